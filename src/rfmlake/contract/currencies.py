"""ISO 4217 currency codes: what `unknown_currency` means (a code outside this list), for orders,
products and landed exchange rates alike.

A static list, so ingest needs no lookup and every engine applies the same rule. It holds the codes
of ISO 4217 list one (currencies, funds and precious metals) and the codes withdrawn since 1999
(list three from the euro's start: DEM, FRF, HRK, BGN, ...), so historical orders and reference-rate
histories stay readable. XXX ("no currency") and XTS ("reserved for testing") are ISO codes that
name no currency and are left out. Taken from Unicode CLDR's currency data (as babel 2.19 ships
it), the funds and metals of list one added; update it when ISO 4217 adds a code (XCG in 2025,
ZWG in 2024 are in).
"""

from __future__ import annotations

import re

_CURRENT = """
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BHD BIF BMD BND BOB BOV BRL BSD BTN BWP BYN
BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD
FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS
KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK
MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR
SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH
UGX USD USN UYI UYU UYW UZS VES VND VUV WST XAF XAG XAU XBA XBB XBC XBD XCD XCG XDR XOF XPD XPF
XPT XSU XUA YER ZAR ZMW ZWG
"""
_WITHDRAWN_SINCE_1999 = """
ADP AFA AON AOR ATS AZM BEF BGL BGN BYB BYR CSD CUC CYP DEM ECS ECV EEK ESP FIM FRF GHC GRD HRK
IEP ITL LTL LUF LVL MCF MGF MRO MTL MZM NLG PTE ROL SDD SIT SKK SLL SRG STD TJR TMM TPE TRL USS
VEB VEF XFO XFU XRE YUM ZMK ZWD ZWL ZWR
"""

CURRENT_CODES: frozenset[str] = frozenset(_CURRENT.split())
WITHDRAWN_CODES: frozenset[str] = frozenset(_WITHDRAWN_SINCE_1999.split())
ISO_4217_CODES: tuple[str, ...] = tuple(sorted(CURRENT_CODES | WITHDRAWN_CODES))
_SHAPE = re.compile(r"[A-Z]{3}")


def is_currency_code(code: object) -> bool:
    """Whether `code` is an ISO 4217 currency code (upper case, as silver holds them)."""
    return isinstance(code, str) and code in _CODES


def check_currency_code(code: str, what: str) -> str:
    """`code` when it is an ISO 4217 code; a ValueError saying why not otherwise (settings validation)."""
    if not _SHAPE.fullmatch(code):
        raise ValueError(f"{what}: {code!r} is not an ISO 4217 code like 'EUR' (three upper-case letters)")
    if code not in _CODES:
        raise ValueError(f"{what}: {code!r} is not an ISO 4217 currency code")
    return code


_CODES = frozenset(ISO_4217_CODES)

__all__ = ["CURRENT_CODES", "ISO_4217_CODES", "WITHDRAWN_CODES", "check_currency_code", "is_currency_code"]
