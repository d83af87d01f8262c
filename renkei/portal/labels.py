"""Plain words for the portal, in Japanese and English: steps, items, reasons, agencies.

Agency names and duties come from ``hub.directory``; item labels are ours (the directory
describes items for engineers). Unknown codes are shown as they are, never hidden.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

__all__ = ["ITEMS", "REASONS", "Names", "describe", "jst"]

JST = timezone(timedelta(hours=9), "JST")

ITEMS: dict[str, tuple[str, str]] = {
    "pension.benefit_status": ("年金の支給状況", "pension benefit status"),
    "pension.annual_amount": ("年金の年額", "annual pension amount"),
    "pension.insured_status": ("年金の被保険者資格", "pension insured status"),
    "resident_tax.income": ("住民税の所得情報", "income (resident tax)"),
    "resident_tax.assessment": ("住民税の課税状況", "resident tax assessment"),
    "child_allowance.status": ("児童手当の受給状況", "child allowance status"),
    "public_assistance.status": ("生活保護の受給状況", "public assistance status"),
    "health_insurance.qualification": ("医療保険の資格情報", "health insurance qualification"),
    "health_insurance.benefit_status": ("傷病手当金の支給状況", "sickness allowance status"),
    "employment_insurance.benefit_status": (
        "雇用保険(基本手当)の受給状況",
        "unemployment benefit status",
    ),
    "employment_insurance.insured_status": (
        "雇用保険の被保険者資格",
        "employment insurance status",
    ),
    "specified_medical_care.status": ("特定医療費の受給状況", "specified medical care status"),
    "scholarship.status": ("奨学金の状況", "scholarship status"),
    "scholarship.repayment_status": ("奨学金の返還状況", "scholarship repayment status"),
    # life events, the "items" of a NOTIFIED record
    "REGISTERED": ("住民登録", "registration"),
    "MOVED": ("住所の変更", "change of address"),
    "RENAMED": ("氏名の変更", "change of name"),
    "DIED": ("死亡", "death"),
    "NUMBER_REISSUED": ("個人番号の変更", "new My Number"),
}

REASONS: dict[str, tuple[str, str]] = {
    "PROVIDER_DOES_NOT_HOLD": ("照会先に該当する情報がない", "the agency asked holds no record"),
    "NOT_ENROLLED": ("照会元に登録がない", "the asking agency has not linked you"),
    "UNKNOWN_SCENARIO": ("法令上の根拠がない照会", "no legal basis for the request"),
    "SCENARIO_MISMATCH": ("法令上認められていない照会", "the law does not allow this request"),
    "ITEM_NOT_PERMITTED": ("法令上認められていない項目", "an item the law does not allow"),
    "INVALID_LINK_CODE": ("符号が不正", "an invalid link code"),
    "EXPIRED_LINK_CODE": ("符号の有効期限切れ", "an expired link code"),
    "DEADLINE_INVALID": ("期限の指定が不正", "an invalid deadline"),
    "BAD_SIGNATURE": ("署名が不正", "an invalid signature"),
    "UNKNOWN_AGENCY": ("登録されていない機関", "an agency not in the directory"),
    "TIMEOUT": ("期限内に回答がなかった", "no answer in time"),
}


@dataclass(frozen=True)
class Names:
    """Agency names and scenario duties, from the directory."""

    agencies: dict[str, tuple[str, str]]  # agency id → (Japanese, English)
    duties: dict[str, tuple[str, str]]  # scenario id → (Japanese, English)

    def agency(self, agency_id: str | None) -> tuple[str, str]:
        if agency_id is None:
            return ("(不明)", "(unknown)")
        if agency_id == "registry":
            return ("住民基本台帳", "the resident registry")
        return self.agencies.get(agency_id, (agency_id, agency_id))


def jst(ms: int) -> str:
    """A time as a citizen reads it: Japan time, to the minute."""
    return datetime.fromtimestamp(ms / 1000, UTC).astimezone(JST).strftime("%Y-%m-%d %H:%M")


def items_text(items: tuple[str, ...]) -> tuple[str, str]:
    labels = [ITEMS.get(i, (i, i)) for i in items]
    return "、".join(j for j, _ in labels), ", ".join(e for _, e in labels)


def describe(
    step: str,
    actor: str,
    requester: str | None,
    provider: str | None,
    scenario_id: str | None,
    items: tuple[str, ...],
    error_code: str | None,
    names: Names,
) -> tuple[str, str]:
    """One record as a sentence in Japanese and one in English. Never a value: records
    carry none."""
    req_ja, req_en = names.agency(requester or actor)
    prov_ja, prov_en = names.agency(provider)
    what_ja, what_en = items_text(items)
    duty_ja, duty_en = names.duties.get(scenario_id or "", ("", ""))
    for_ja = f"(事務:{duty_ja})" if duty_ja else ""
    for_en = f' for "{duty_en}"' if duty_en else ""
    if step == "FORWARDED":
        return (
            f"{req_ja}が{prov_ja}に、あなたの{what_ja}を照会しました{for_ja}。",
            f"{req_en} asked {prov_en} for your {what_en}{for_en}.",
        )
    if step == "ANSWERED":
        return (
            f"{prov_ja}が{req_ja}からの照会({what_ja})に回答しました。",
            f"{prov_en} answered {req_en}'s request for your {what_en}.",
        )
    if step == "TIMED_OUT":
        return (
            f"{prov_ja}は{req_ja}からの照会({what_ja})に期限内に回答しませんでした。"
            "情報は提供されていません。",
            f"{prov_en} did not answer {req_en}'s request for your {what_en} in time; "
            "nothing was provided.",
        )
    if step == "REFUSED":
        reason_ja, reason_en = REASONS.get(error_code or "", (error_code or "", error_code or ""))
        return (
            f"{req_ja}から{prov_ja}への照会({what_ja})は拒否されました(理由:{reason_ja})。"
            "情報は提供されていません。",
            f"{req_en}'s request to {prov_en} for your {what_en} was refused ({reason_en}); "
            "nothing was provided.",
        )
    if step == "NOTIFIED":
        kind_ja = f"({what_ja})" if what_ja else ""
        kind_en = f" ({what_en})" if what_en else ""
        return (
            f"住民票の異動情報{kind_ja}が{req_ja}に通知されました。",
            f"{req_en} was notified of a change in your resident record{kind_en}.",
        )
    if step == "ENROLLED":
        return (
            f"{req_ja}があなたの情報を情報連携に登録しました(紐付け)。",
            f"{req_en} linked its record of you for data exchange.",
        )
    if step == "DEENROLLED":
        return (
            f"{req_ja}があなたの情報の登録を解除しました。",
            f"{req_en} ended the link of its record of you.",
        )
    if step == "REGISTRY_APPLIED":
        return ("住民基本台帳の情報が反映されました。", "Your resident record was updated.")
    return (f"{req_ja}:{step}", f"{req_en}: {step}")


STEP_TITLES: dict[str, tuple[str, str]] = {
    "FORWARDED": ("照会", "request"),
    "ANSWERED": ("回答", "answer"),
    "TIMED_OUT": ("回答なし", "no answer"),
    "REFUSED": ("拒否", "refused"),
    "NOTIFIED": ("通知", "notice"),
    "ENROLLED": ("登録", "linked"),
    "DEENROLLED": ("登録解除", "unlinked"),
    "REGISTRY_APPLIED": ("住民票", "resident record"),
}
