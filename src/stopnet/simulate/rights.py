"""The demo's rights holders at work: approved brands, published identification guides with photos, and
verification requests in every state (open, answered, overdue).

Everything goes through the rights-holder services as the people who would do it (the holder registers and
writes, the coordinating unit approves, the demo's administration asks, the holder answers), so the audit
trail and the pages show the demo as it would be used. The photos are drawn with Pillow: a genuine label
next to a counterfeit one, with the differences the guide describes. Idempotent: a brand already
registered is left as it is.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter
from sqlalchemy import select
from sqlalchemy.orm import Session

from stopnet.access.service import cli_principal
from stopnet.db.models import Case, Operation, Organisation, Role, Seizure
from stopnet.db.models.rightsholders import Brand, VerificationAnswer
from stopnet.rightsholders import service
from stopnet.rightsholders.schemas import (
    BrandCreate,
    ContactIn,
    GuideCreate,
    RepresentativeIn,
    TrademarkIn,
    VerificationCreate,
)

COORDINATOR_CODE = "WCO-OCU"


@dataclass(frozen=True)
class _DemoBrand:
    holder: str
    name: str
    aliases: tuple[str, ...]
    product_lines: tuple[str, ...]
    hs_codes: tuple[str, ...]
    mark: str
    registration: str
    classes: str
    colour: tuple[int, int, int]
    genuine: str
    fakes: str


BRANDS: tuple[_DemoBrand, ...] = (
    _DemoBrand(
        "RH-NOVAFIT",
        "Novafit",
        ("Nova-fit", "NOVAFIT Sport"),
        ("Sports shoes", "Football shirts", "T-shirts", "Caps"),
        ("6404", "6110", "6109", "6505"),
        "NOVAFIT (word and figurative)",
        "EU 018 402 117",
        "18, 25, 28",
        (20, 90, 160),
        "Woven neck label with the wave logo in relief; holographic swing tag with a 12-digit serial that "
        "matches the size label; stitching of 8 to 10 stitches per 2 cm; box label printed, never handwritten.",
        "Logo printed flat or crooked; the wave has two crests instead of three; serial missing or repeated "
        "on every item; spelling 'Novafitt' or 'Nova Fit'; shoes shipped without box in polybags of ten.",
    ),
    _DemoBrand(
        "RH-HALCYON",
        "Slimora",
        ("Slimora pen", "Slimora GLP-1"),
        ("Weight-loss pens", "Slimming capsules"),
        ("3004",),
        "SLIMORA",
        "WO 1 702 331",
        "5",
        (120, 40, 140),
        "Pre-filled pen in a sealed carton with a tamper-evident label and a 2D data-matrix code (EU FMD); "
        "batch and expiry embossed on the carton and printed on the pen; patient leaflet in the languages "
        "of the market of sale.",
        "No data-matrix code, or one that does not decode to the batch; pens sold singly without carton; "
        "leaflet photocopied or in one language only; batch numbers repeated across consignments; sold by "
        "social-media shops without prescription.",
    ),
    _DemoBrand(
        "RH-HALCYON",
        "Vigorem",
        ("Vigorem 50", "Vigorem 100"),
        ("Erectile dysfunction tablets",),
        ("3004",),
        "VIGOREM",
        "EU 017 993 540",
        "5",
        (30, 120, 90),
        "Blue diamond-shaped film-coated tablets embossed 'VGM 50' or 'VGM 100'; blisters of 4 with the "
        "batch printed on each strip; carton with the data-matrix code and tamper-evident seal.",
        "Tablets of uneven colour or without embossing; blisters of 10 or loose tablets in plastic bags; "
        "cartons without data-matrix code; declared as 'herbal supplement' or 'sweets'.",
    ),
)


@dataclass
class RightsDemoInfo:
    brands: list[str] = field(default_factory=list)
    guides: int = 0
    photos: int = 0
    requests: dict[str, int] = field(default_factory=dict)


def label_photo(brand: _DemoBrand, genuine: bool) -> bytes:
    """A PNG of a product label: the genuine one crisp with its hologram and serial, the fake one blurred,
    misspelt and without hologram (the differences the guide describes)."""
    img = Image.new("RGB", (480, 300), (246, 246, 242))
    draw = ImageDraw.Draw(img)
    draw.rectangle((20, 20, 460, 280), outline=brand.colour, width=6, fill=(255, 255, 255))
    name = brand.name.upper() if genuine else brand.name.upper()[:-1] + brand.name.upper()[-1] * 2
    draw.text((48, 48), name, fill=brand.colour, font_size=44)
    draw.text((48, 110), brand.product_lines[0], fill=(40, 40, 40), font_size=22)
    if genuine:
        draw.ellipse((360, 180, 440, 260), outline=(150, 150, 150), width=3, fill=(210, 225, 240))
        draw.text((376, 208), "HOLO", fill=(90, 90, 120), font_size=16)
        draw.text((48, 230), "SN 4021 7730 1183", fill=(30, 30, 30), font_size=18)
    else:
        draw.text((48, 230), "SN 0000 0000 0000", fill=(120, 120, 120), font_size=18)
    draw.text(
        (48, 160),
        "GENUINE" if genuine else "COUNTERFEIT",
        fill=(30, 120, 50) if genuine else (180, 40, 30),
        font_size=20,
    )
    if not genuine:
        img = img.rotate(2.5, fillcolor=(246, 246, 242)).filter(ImageFilter.GaussianBlur(1.2))
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _brand_seizure(session: Session, op: Operation, org: Organisation, brand: Brand) -> Seizure | None:
    aliases = {a.normalised for a in brand.aliases}
    for seizure in session.scalars(
        select(Seizure)
        .join(Case, Case.id == Seizure.case_id)
        .where(Case.operation_id == op.id, Case.reporting_org_id == org.id, Seizure.brand != "")
        .order_by(Case.detected_on, Seizure.id)
    ):
        if service.normalise_brand(seizure.brand) in aliases:
            return seizure
    return None


def seed_demo_rights(
    session: Session,
    *,
    operation: str,
    org_code: str,
    data_dir: Path,
    max_bytes: int,
    now: dt.datetime | None = None,
) -> RightsDemoInfo:
    """Brands, guides with photos and verification requests for the demo (see the module docstring)."""
    now = now or dt.datetime.now(dt.UTC)
    info = RightsDemoInfo()
    op = session.scalar(select(Operation).where(Operation.code == operation.upper()))
    org = session.scalar(select(Organisation).where(Organisation.code == org_code.upper()))
    if op is None or org is None:
        raise ValueError(f"no operation {operation!r} or no organisation {org_code!r}")
    coordinator = cli_principal(session, COORDINATOR_CODE, Role.COORDINATOR)
    officer = cli_principal(session, org.code, Role.OFFICER)
    requests: list[tuple[Brand, Seizure | None, str]] = []
    for n, b in enumerate(BRANDS):
        holder_org = session.scalar(select(Organisation).where(Organisation.code == b.holder))
        if holder_org is None:
            continue
        holder = cli_principal(session, b.holder, Role.RIGHTS_HOLDER)
        if session.scalar(select(Brand.id).where(Brand.owner_org_id == holder_org.id, Brand.name == b.name)):
            continue
        brand = service.register_brand(
            session,
            holder,
            BrandCreate(
                name=b.name,
                description=f"{b.name}: {', '.join(b.product_lines).lower()}. Genuine goods are sold only by "
                "authorised distributors; report suspect goods to the contact below.",
                product_lines=list(b.product_lines),
                hs_codes=list(b.hs_codes),
                aliases=list(b.aliases),
                trademarks=[
                    TrademarkIn(
                        mark=b.mark,
                        registration_number=b.registration,
                        territory=b.registration[:2],
                        office="EUIPO" if b.registration.startswith("EU") else "WIPO",
                        classes=b.classes,
                        registered_on=dt.date(2016 + n, 3, 14),
                        expires_on=dt.date(2026 + n + 10, 3, 14),
                    )
                ],
                representatives=[
                    RepresentativeIn(
                        name="Anne-Laure Mercier",
                        firm="Mercier & Okafor IP",
                        email=f"brand-protection@{b.name.lower()}.example",
                        mandate="Application for action (EU 608/2013), all member states",
                        territories="EU",
                    )
                ],
            ),
            now=now,
        )
        service.add_contact(
            session,
            holder,
            brand.id,
            ContactIn(
                name="Brand protection desk",
                function="Verification of suspect goods",
                email=f"verify@{b.name.lower()}.example",
                phone="+41 22 555 01 90",
                languages="en, fr, es",
                response_hours=48,
            ),
            now=now,
        )
        service.decide_brand(
            session, coordinator, brand.id, "approved", "Trademark checked with EUIPO.", now=now
        )
        info.brands.append(b.name)
        guide = service.create_guide(
            session,
            holder,
            GuideCreate(
                title=f"{b.name}: telling genuine goods from fakes",
                summary=f"How customs officers recognise genuine {b.name} {b.product_lines[0].lower()} "
                "and the signs of the counterfeits seized in recent operations.",
                genuine_features=b.genuine,
                packaging="See the photos: the genuine label (left) and a seized counterfeit (right).",
                fake_indicators=b.fakes,
                products=list(b.product_lines),
                hs_codes=list(b.hs_codes),
                valid_from=op.starts_on - dt.timedelta(days=60),
                brand_id=brand.id,
            ),
            now=now,
        )
        for genuine in (True, False):
            service.add_guide_attachment(
                session,
                holder,
                guide.id,
                f"{b.name.lower()}-{'genuine' if genuine else 'counterfeit'}-label.png",
                label_photo(b, genuine),
                data_dir,
                max_bytes,
                now=now,
            )
            info.photos += 1
        service.publish_guide(session, holder, guide.id, now=now)
        info.guides += 1
        seizure = _brand_seizure(session, op, org, brand)
        requests.append((brand, seizure, ("answered", "open", "overdue")[n % 3]))
    for brand, seizure, state in requests:
        sent = now - dt.timedelta(days=30 if state == "overdue" else (6 if state == "answered" else 1))
        product = seizure.description if seizure and seizure.description else brand.name
        req = service.create_request(
            session,
            officer,
            VerificationCreate(
                brand_id=brand.id,
                operation=op.code,
                case_id=seizure.case_id if seizure else None,
                seizure_id=seizure.id if seizure else None,
                product=product[:200] if len(product) >= 2 else f"{brand.name} goods",
                details=f"Goods bearing the {brand.name} mark; labels and packaging photographed at the "
                "office. Please say whether they are genuine.",
                hs_code=brand.hs_codes.split()[0] if brand.hs_codes else "",
                pieces=seizure.pieces if seizure else None,
            ),
            now=sent,
        )
        if state == "answered":
            holder = cli_principal(
                session, session.get_one(Organisation, brand.owner_org_id).code, Role.RIGHTS_HOLDER
            )
            service.answer_request(
                session,
                holder,
                req.id,
                VerificationAnswer.COUNTERFEIT,
                "Counterfeit: no hologram, serial 0000 0000 0000, misspelt brand (see the guide).",
                now=sent + dt.timedelta(days=2),
            )
        info.requests[state] = info.requests.get(state, 0) + 1
    session.flush()
    return info
