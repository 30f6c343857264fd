"""Deterministic seeded data for the Hubsoft simulator: customers and their invoices.

Same seed and same `today`, same data. The mix follows what real tenants show: boleto
and direct-debit invoices, with and without PIX codes, paid (some late, with interest),
overdue and open; some customers in the older payload shape (`detalhamento` as one
object), some with the undocumented `status`/`quitado`/`valor_pago` fields; one customer
with more than 50 invoices, so the 50-row cap matters. Customer 1099 carries the four
invoices of the vendor's documentation example, as documented.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

FIRST = [
    "Maria",
    "João",
    "Ana",
    "Pedro",
    "Lucas",
    "Juliana",
    "Carlos",
    "Fernanda",
    "Rafael",
    "Beatriz",
    "Gabriel",
    "Camila",
    "Bruno",
    "Larissa",
    "Felipe",
    "Patrícia",
]
LAST = [
    "Silva",
    "Santos",
    "Oliveira",
    "Souza",
    "Lima",
    "Pereira",
    "Costa",
    "Almeida",
    "Ferreira",
    "Rodrigues",
    "Gomes",
    "Martins",
]
COMPANIES = [
    "Padaria Pão Quente Ltda",
    "Mercado Bom Preço ME",
    "Oficina Dois Irmãos Ltda",
]
PLANS = [
    ("100MB-FIBRA", Decimal("79.90")),
    ("300MB-FIBRA", Decimal("99.90")),
    ("500MB-FIBRA", Decimal("129.90")),
    ("1GB-FIBRA", Decimal("199.90")),
    ("5MB-WIRELESS", Decimal("54.95")),
]
KINDS = ["boleto_bancario"] * 14 + ["debito_conta_corrente"] * 4 + ["pix", "carne"]
DOC_CUSTOMER = ("1099", "12345678909", "Maria Silva")
HEAVY_CODE = "2001"


@dataclass
class SimCustomer:
    """A Hubsoft customer with one service (plan)."""

    code: str
    client_id: int
    document: str
    name: str
    service_id: int
    plan: str
    legacy_shape: bool = False  # detalhamento as one object, as in the older docs
    status_fields: bool = False  # sends the undocumented status/quitado/valor_pago


@dataclass
class SimInvoice:
    """One invoice as the simulator stores it."""

    id: int
    customer: SimCustomer
    due: date
    created: date
    amount: Decimal
    kind: str
    our_number: str
    paid_on: date | None = None
    paid_amount: Decimal | None = None
    our_number_dv: str | None = None
    digitable_line: str | None = None
    barcode: str | None = None
    pix: str | None = None
    lines: list[tuple[str, Decimal]] = field(default_factory=list)


def cpf(rng: random.Random) -> str:
    """A random valid CPF (check digits computed)."""
    digits = [rng.randint(0, 9) for _ in range(9)]
    for size in (9, 10):
        total = sum(d * w for d, w in zip(digits, range(size + 1, 1, -1), strict=True))
        digits.append(0 if total % 11 < 2 else 11 - total % 11)  # noqa: PLR2004
    return "".join(map(str, digits))


def cnpj(rng: random.Random) -> str:
    """A random valid CNPJ (check digits computed)."""
    digits = [rng.randint(0, 9) for _ in range(8)] + [0, 0, 0, 1]
    first = [5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2]
    for weights in (first, [6, *first]):
        total = sum(d * w for d, w in zip(digits, weights, strict=True))
        digits.append(0 if total % 11 < 2 else 11 - total % 11)  # noqa: PLR2004
    return "".join(map(str, digits))


def _customers(rng: random.Random, count: int) -> list[SimCustomer]:
    code, name_doc = DOC_CUSTOMER[0], DOC_CUSTOMER[1:]
    out = [
        SimCustomer(
            code, 501, name_doc[0], name_doc[1], 8801, "5MB-WIRELESS", legacy_shape=True
        )
    ]
    for i in range(1, count):
        company = i % 13 == 0
        name = (
            COMPANIES[i % len(COMPANIES)]
            if company
            else f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        )
        out.append(
            SimCustomer(
                code=HEAVY_CODE if i == 1 else str(2000 + i),
                client_id=500 + i + 1,
                document=cnpj(rng) if company else cpf(rng),
                name=name,
                service_id=8800 + i + 1,
                plan=rng.choice(PLANS)[0],
                legacy_shape=i % 5 == 0,
                status_fields=i % 7 == 3,  # noqa: PLR2004
            )
        )
    return out


def _boleto(rng: random.Random, inv: SimInvoice) -> None:
    blocks = "".join(str(rng.randint(0, 9)) for _ in range(47))
    inv.digitable_line = (
        f"{blocks[0:5]}.{blocks[5:10]} {blocks[10:15]}.{blocks[15:21]} "
        f"{blocks[21:26]}.{blocks[26:32]} {blocks[32]} {blocks[33:47]}"
    )
    inv.barcode = "".join(str(rng.randint(0, 9)) for _ in range(44))
    inv.our_number_dv = f"{int(inv.our_number):07d}-{rng.randint(0, 9)}"


def _pix(rng: random.Random, inv: SimInvoice) -> str:
    txid = "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(25))
    amount = f"{inv.amount:.2f}"
    return (
        "00020101021226860014br.gov.bcb.pix2564pix.example-isp.com.br/qr/v2/"
        f"{txid}5204000053039865406{amount}5802BR5913EXAMPLE ISP6009SAO PAULO62070503***6304"
        f"{rng.randint(0, 0xFFFF):04X}"
    )


def _settle(rng: random.Random, inv: SimInvoice, today: date) -> None:
    chance = 0.88 if inv.due < today - timedelta(days=5) else 0.25
    if rng.random() >= chance:
        return
    late = rng.random() < 0.15  # noqa: PLR2004
    inv.paid_on = min(
        today,
        inv.due + timedelta(days=rng.randint(3, 20) if late else -rng.randint(0, 4)),
    )
    inv.paid_amount = (
        (inv.amount * Decimal("1.0233")).quantize(Decimal("0.01"))
        if late
        else inv.amount
    )


def _monthly(
    rng: random.Random, cust: SimCustomer, today: date, start_id: int, months: int
) -> list[SimInvoice]:
    price = dict(PLANS)[cust.plan]
    day = rng.choice([5, 10, 15, 20, 25])
    out: list[SimInvoice] = []
    for back in range(months, -2, -1):  # up to next month's invoice
        month_index = today.year * 12 + today.month - 1 - back
        due = date(month_index // 12, month_index % 12 + 1, day)
        inv = SimInvoice(
            id=start_id + len(out),
            customer=cust,
            due=due,
            created=due - timedelta(days=20),
            amount=price,
            kind=rng.choice(KINDS),
            our_number=str(start_id + len(out) + 100000),
            lines=[
                (
                    (
                        f"{cust.plan} ({due - timedelta(days=30):%d/%m/%Y}) "
                        f"até ({due:%d/%m/%Y}) | R$ {price}"
                    ),
                    price,
                )
            ],
        )
        if back == months and not cust.legacy_shape:
            fee = Decimal("12.50")
            inv.lines.append((f"(+) Taxa de Instalação (1/12) | R$ {fee}", fee))
            inv.amount += fee
        if inv.kind == "boleto_bancario":
            _boleto(rng, inv)
        if inv.kind == "pix" or (inv.kind == "boleto_bancario" and rng.random() < 0.5):  # noqa: PLR2004
            inv.pix = _pix(rng, inv)
        _settle(rng, inv, today)
        out.append(inv)
    return out


def _documented(cust: SimCustomer) -> list[SimInvoice]:
    """The four invoices of the vendor's `/cliente/financeiro` example, verbatim."""

    def inv(
        i: int, nn: str, kind: str, amount: str, due: date, paid: date | None, text: str
    ) -> SimInvoice:
        return SimInvoice(
            i,
            cust,
            due,
            due - timedelta(days=20),
            Decimal(amount),
            kind,
            nn,
            paid_on=paid,
            paid_amount=Decimal(amount) if paid else None,
            lines=[(text, Decimal(amount))],
        )

    boleto = inv(
        44612,
        "274764",
        "boleto_bancario",
        "10",
        date(2018, 8, 31),
        None,
        "Cobrança SCM",
    )
    boleto.our_number_dv = "0274764-0"
    boleto.digitable_line = "75691.31662 01006.726101 27476.400018 2 76380000001023"
    first = inv(
        36398,
        "1",
        "debito_conta_corrente",
        "132.5",
        date(2017, 10, 10),
        date(2018, 7, 9),
        "(+) Taxa de Instalação (1/12) | R$ 12.50",
    )
    first.lines = [("(+) Taxa de Instalação (1/12) | R$ 12.50", Decimal("12.5"))]
    wireless = inv(
        43625,
        "4",
        "debito_conta_corrente",
        "12.5",
        date(2018, 6, 10),
        None,
        "(+) 5MB-WIRELESS (10/05/2018) até (09/06/2018)  | R$ 0.00",
    )
    wireless.lines = [(wireless.lines[0][0], Decimal(0))]  # as documented: a 0 line
    return [
        first,
        wireless,
        inv(
            42338,
            "2",
            "debito_conta_corrente",
            "10",
            date(2018, 7, 1),
            None,
            "Cobrança adicional - teste",
        ),
        boleto,
    ]


def generate(
    seed: int, today: date, customers: int = 40
) -> tuple[list[SimCustomer], list[SimInvoice]]:
    """Customers and invoices for one simulator instance."""
    rng = random.Random(seed)
    people = _customers(rng, customers)
    invoices = _documented(people[0])
    next_id = 50000
    for cust in people:
        months = 70 if cust.code == HEAVY_CODE else rng.randint(4, 18)
        batch = _monthly(rng, cust, today, next_id, months)
        invoices.extend(batch)
        next_id += len(batch)
    return people, invoices
