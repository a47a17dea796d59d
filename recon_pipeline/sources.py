"""The landing-zone sources of the data contract: keys, columns and their types.

Types: `text`, `decimal` (DECIMAL(18,2) yuan), `timestamp` (local time, see settings.timezone),
`date`, and `enum` (a closed vocabulary). `required` columns must be in every file's header
and non-empty in every row (a row without one is quarantined); other columns are optional.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    name: str
    type: str = "text"
    required: bool = False
    values: tuple[str, ...] = ()  # the vocabulary of an `enum` column


@dataclass(frozen=True)
class SourceSpec:
    name: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    # Versions of the same key are ordered by this column first (upsert rule), if present.
    version_column: str | None = "updated_at"

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


def _key(name: str) -> Column:
    return Column(name, "text", required=True)


SOURCES: dict[str, SourceSpec] = {
    spec.name: spec
    for spec in [
        SourceSpec(
            "customers",
            key=("customer_id",),
            columns=(
                _key("customer_id"),
                Column("customer_name", required=True),
                Column("credit_code"),
                Column("aliases"),
                Column("region_code"),
                Column("industry"),
                Column("owner_salesperson_id"),
                Column("updated_at", "timestamp"),
            ),
        ),
        SourceSpec(
            "salespeople",
            key=("salesperson_id",),
            columns=(
                _key("salesperson_id"),
                Column("name"),
                Column("email"),
                Column("manager_email"),
                Column("region_code"),
                Column("updated_at", "timestamp"),
            ),
        ),
        SourceSpec(
            "crm_contracts",
            key=("order_id",),
            columns=(
                _key("order_id"),
                Column("contract_no"),
                Column("customer_id"),
                Column("customer_name"),
                Column("salesperson_id"),
                Column("region_code"),
                Column("industry"),
                Column("amount", "decimal"),
                Column("currency"),
                Column("status", "enum", values=("draft", "submitted", "signed", "cancelled")),
                Column("signed_at", "timestamp"),
                Column("approval_status", "enum", values=("pending", "approved", "rejected")),
                Column("approval_submitted_at", "timestamp"),
                Column("approval_updated_at", "timestamp"),
                Column("updated_at", "timestamp"),
            ),
        ),
        SourceSpec(
            "erp_invoices",
            key=("invoice_no",),
            columns=(
                _key("invoice_no"),
                Column("order_id"),
                Column("customer_name"),
                Column("invoice_date", "date"),
                Column("amount_excl_tax", "decimal"),
                Column("tax_amount", "decimal"),
                Column("total_amount", "decimal", required=True),
                Column("invoice_type", "enum", values=("normal", "red")),
                Column("status", "enum", values=("issued", "voided")),
                Column("updated_at", "timestamp"),
            ),
        ),
        SourceSpec(
            "bank_transactions",
            key=("account_no", "txn_id"),
            columns=(
                _key("account_no"),
                _key("txn_id"),
                Column("txn_time", "timestamp", required=True),
                Column("amount", "decimal", required=True),
                Column("currency"),
                Column("counterparty_name"),
                Column("counterparty_account"),
                Column("memo"),
            ),
            version_column=None,
        ),
        SourceSpec(
            "legal_archive",
            key=("archive_no",),
            columns=(
                _key("archive_no"),
                Column("order_id"),
                Column("review_status", "enum", values=("pending", "approved", "rejected")),
                Column("submitted_at", "timestamp"),
                Column("reviewed_at", "timestamp"),
                Column("archived_at", "timestamp"),
                Column("updated_at", "timestamp"),
            ),
        ),
        SourceSpec(
            "finance_writeoffs",
            key=("writeoff_id",),
            columns=(
                _key("writeoff_id"),
                Column("txn_id"),
                Column("order_id"),
                Column("invoice_no"),
                Column("amount", "decimal", required=True),
                Column("confirmed_by"),
                Column("confirmed_at", "timestamp"),
                Column("status", "enum", values=("active", "reversed")),
            ),
            # Write-offs carry no updated_at: a later drop of the same id replaces the earlier.
            version_column=None,
        ),
        # Finance's decisions on suggested payer matches (the dashboard's review queue writes
        # them): `confirm` links the credit, `reject` stops that suggestion from coming back.
        SourceSpec(
            "match_feedback",
            key=("feedback_id",),
            columns=(
                _key("feedback_id"),
                Column("account_no"),
                Column("txn_id", required=True),
                Column("customer_id"),
                Column("order_id"),
                # Empty while finance has not decided (a review-queue row left blank): ignored.
                # `undo` withdraws the earlier decision on the same line and customer.
                Column("decision", "enum", values=("confirm", "reject", "undo")),
                Column("decided_by"),
                Column("decided_at", "timestamp"),
                Column("comment"),
            ),
            version_column="decided_at",
        ),
        # What people did about an alert, a diff-list item or the red health board (the
        # dashboard writes them): the alerts stage measures the SLAs against them.
        SourceSpec(
            "alert_actions",
            key=("action_id",),
            columns=(
                _key("action_id"),
                Column("target_type", "enum", required=True, values=("alert", "diff", "health")),
                Column("target_id", required=True),
                Column("action", "enum", required=True, values=("acknowledge", "assign", "comment", "resolve")),
                Column("assignee"),
                Column("note"),
                Column("acted_by"),
                Column("acted_at", "timestamp", required=True),
            ),
            version_column="acted_at",
        ),
    ]
}

# Metadata columns every raw history row carries (provenance: nothing received is lost).
META_COLUMNS = ("_drop_date", "_source_file", "_row_number", "_extra_columns")
