"""REST API of operations."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from stopnet.web.deps import DB, READ, SESSION_ONLY, CurrentPrincipal

from . import service
from .schemas import OperationCreate, OperationDetail, OperationOut

router = APIRouter(prefix="/api/v1/operations", tags=["operations"])


@router.get("", response_model=list[OperationOut], dependencies=[READ])
def list_operations(db: DB, principal: CurrentPrincipal) -> list[OperationOut]:
    return [service.to_out(db, op) for op in service.list_operations(db, principal)]


@router.post("", response_model=OperationOut, status_code=201, dependencies=[SESSION_ONLY])
def create_operation(body: OperationCreate, db: DB, principal: CurrentPrincipal) -> JSONResponse:
    op = service.create_operation(db, principal, body)
    out = service.to_out(db, op).model_dump(mode="json")
    db.commit()
    return JSONResponse(out, status_code=201, headers={"Location": f"/api/v1/operations/{op.code}"})


@router.get("/{code}", response_model=OperationDetail, dependencies=[READ])
def get_operation(code: str, db: DB, principal: CurrentPrincipal) -> OperationDetail:
    return service.to_detail(db, service.get_operation(db, principal, code))
