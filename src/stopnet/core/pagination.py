"""Paging parameters shared by every list endpoint."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request


@dataclass(frozen=True)
class Paging:
    page: int
    page_size: int


async def paging(  # no blocking work: runs on the event loop, not in the thread pool
    request: Request,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int | None, Query(ge=1)] = None,
) -> Paging:
    settings = request.app.state.settings
    size = page_size or settings.page_size_default
    return Paging(page=page, page_size=min(size, settings.page_size_max))


PagingDep = Annotated[Paging, Depends(paging)]
