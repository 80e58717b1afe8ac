"""Gateways and packages in SQL."""

from __future__ import annotations

from adapters.sql.session import Session, text
from flamepay.catalogue import Gateway, Package

_PACKAGE_COLUMNS = "id, way_code, label, amount, sort_order, enabled"


def _package(row: tuple) -> Package:
    return Package(int(row[0]), text(row[1]), row[2], int(row[3]), int(row[4]), bool(row[5]))


class SqlCatalogue:
    def __init__(self, s: Session) -> None:
        self.s = s

    def gateway(self, way_code: str) -> Gateway | None:
        row = self.s.one(
            "SELECT way_code, title, enabled FROM gateways WHERE way_code = %s",
            (way_code.encode(),),
        )
        return Gateway(text(row[0]), row[1], bool(row[2])) if row else None

    def save_gateway(self, gateway: Gateway) -> None:
        changed = self.s.execute(
            "UPDATE gateways SET title = %s, enabled = %s WHERE way_code = %s",
            (gateway.title, int(gateway.enabled), gateway.way_code.encode()),
        )
        if changed == 0 and self.gateway(gateway.way_code) is None:
            self.s.execute(
                "INSERT INTO gateways (way_code, title, enabled) VALUES (%s, %s, %s)",
                (gateway.way_code.encode(), gateway.title, int(gateway.enabled)),
            )

    def gateways(self) -> list[Gateway]:
        rows = self.s.all("SELECT way_code, title, enabled FROM gateways ORDER BY way_code")
        return [Gateway(text(r[0]), r[1], bool(r[2])) for r in rows]

    def package(self, package_id: int) -> Package | None:
        row = self.s.one(f"SELECT {_PACKAGE_COLUMNS} FROM packages WHERE id = %s", (package_id,))
        return _package(row) if row else None

    def add_package(self, package: Package) -> Package:
        package.id = self.s.insert(
            "INSERT INTO packages (way_code, label, amount, sort_order, enabled) "
            "VALUES (%s, %s, %s, %s, %s)",
            (
                package.way_code.encode(),
                package.label,
                package.amount,
                package.sort_order,
                int(package.enabled),
            ),
        )
        return package

    def save_package(self, package: Package) -> None:
        self.s.execute(
            "UPDATE packages SET label = %s, amount = %s, sort_order = %s, enabled = %s "
            "WHERE id = %s",
            (package.label, package.amount, package.sort_order, int(package.enabled), package.id),
        )

    def packages(self, way_code: str | None = None) -> list[Package]:
        if way_code is None:
            rows = self.s.all(f"SELECT {_PACKAGE_COLUMNS} FROM packages ORDER BY sort_order, id")
        else:
            rows = self.s.all(
                f"SELECT {_PACKAGE_COLUMNS} FROM packages WHERE way_code = %s "
                "ORDER BY sort_order, id",
                (way_code.encode(),),
            )
        return [_package(r) for r in rows]
