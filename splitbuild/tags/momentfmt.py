"""``moment(date).tz(zone).format(fmt)`` with the English locale, as metadata-action's date helpers use.

The token table, bracket escapes, backslash escapes and locale shortcuts (``L``, ``LT``...) follow
moment 2.30. An empty or missing format gives moment's default ISO format (``Z`` suffix when the
zone's offset is zero). Zone names are IANA names looked up case-insensitively, and an unknown zone
falls back to UTC, as moment-timezone does.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache

__all__ = ["format_moment", "resolve_zone"]

_FORMATTING_TOKENS = re.compile(
    r"(\[[^\[]*\])|(\\)?([Hh]mm(ss)?|Mo|MM?M?M?|Do|DDDo|DD?D?D?|ddd?d?|do?|w[o|w]?|W[o|W]?|Qo?|N{1,5}"
    r"|YYYYYY|YYYYY|YYYY|YY|y{2,4}|yo?|gg(ggg?)?|GG(GGG?)?|e|E|a|A|hh?|HH?|kk?|mm?|ss?|S{1,9}|x|X|zz?|ZZ?|.)"
)
_LOCAL_FORMATTING_TOKENS = re.compile(r"(\[[^\[]*\])|(\\)?(LTS|LT|LL?L?L?|l{1,4})")
_LONG_DATE_FORMATS = {
    "LTS": "h:mm:ss A",
    "LT": "h:mm A",
    "L": "MM/DD/YYYY",
    "LL": "MMMM D, YYYY",
    "LLL": "MMMM D, YYYY h:mm A",
    "LLLL": "dddd, MMMM D, YYYY h:mm A",
    "l": "M/D/YYYY",
    "ll": "MMM D, YYYY",
    "lll": "MMM D, YYYY h:mm A",
    "llll": "ddd, MMM D, YYYY h:mm A",
}
_DEFAULT_FORMAT = "YYYY-MM-DDTHH:mm:ssZ"
_DEFAULT_FORMAT_UTC = "YYYY-MM-DDTHH:mm:ss[Z]"
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_WEEKDAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_LOCALE_DOW, _LOCALE_DOY = 0, 6  # en: weeks start on Sunday, the week holding Jan 1 is week 1
_ISO_DOW, _ISO_DOY = 1, 4


def _zero_fill(number: int, length: int, force_sign: bool = False) -> str:
    digits = str(abs(number))
    sign = ("+" if force_sign else "") if number >= 0 else "-"
    return sign + "0" * max(0, length - len(digits)) + digits


def _ordinal(number: int) -> str:
    suffix = "th" if (number % 100) // 10 == 1 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def _days_in_year(year: int) -> int:
    return 366 if (year % 4 == 0 and year % 100 != 0) or year % 400 == 0 else 365


def _first_week_offset(year: int, dow: int, doy: int) -> int:
    fwd = 7 + dow - doy
    weekday = (datetime(year, 1, fwd, tzinfo=UTC).weekday() + 1) % 7
    fwdlw = (7 + weekday - dow) % 7
    return -fwdlw + fwd - 1


def _weeks_in_year(year: int, dow: int, doy: int) -> int:
    offset = _first_week_offset(year, dow, doy)
    offset_next = _first_week_offset(year + 1, dow, doy)
    return (_days_in_year(year) - offset + offset_next) // 7


def _week_of_year(moment: datetime, dow: int, doy: int) -> tuple[int, int]:
    year = moment.year
    offset = _first_week_offset(year, dow, doy)
    week = math.floor((moment.timetuple().tm_yday - offset - 1) / 7) + 1
    if week < 1:
        return week + _weeks_in_year(year - 1, dow, doy), year - 1
    if week > _weeks_in_year(year, dow, doy):
        return week - _weeks_in_year(year, dow, doy), year + 1
    return week, year


def _offset(moment: datetime, separator: str) -> str:
    delta = moment.utcoffset() or timedelta(0)
    minutes = int(delta.total_seconds() // 60)
    sign = "+"
    if minutes < 0:
        minutes, sign = -minutes, "-"
    return sign + _zero_fill(minutes // 60, 2) + separator + _zero_fill(minutes % 60, 2)


def _day(m: datetime) -> int:
    return (m.weekday() + 1) % 7


def _ms(m: datetime) -> int:
    return m.microsecond // 1000


def _h12(m: datetime) -> int:
    return m.hour % 12 or 12


def _fraction(digits: int) -> Callable[[datetime], str]:
    def token(m: datetime) -> str:
        value = _ms(m) * 10 ** (digits - 3) if digits >= 3 else _ms(m) // 10 ** (3 - digits)
        return _zero_fill(value, digits)

    return token


_TOKENS: dict[str, Callable[[datetime], str]] = {
    "M": lambda m: str(m.month),
    "Mo": lambda m: _ordinal(m.month),
    "MM": lambda m: _zero_fill(m.month, 2),
    "MMM": lambda m: _MONTHS[m.month - 1][:3],
    "MMMM": lambda m: _MONTHS[m.month - 1],
    "Q": lambda m: str((m.month + 2) // 3),
    "Qo": lambda m: _ordinal((m.month + 2) // 3),
    "D": lambda m: str(m.day),
    "Do": lambda m: _ordinal(m.day),
    "DD": lambda m: _zero_fill(m.day, 2),
    "DDD": lambda m: str(m.timetuple().tm_yday),
    "DDDo": lambda m: _ordinal(m.timetuple().tm_yday),
    "DDDD": lambda m: _zero_fill(m.timetuple().tm_yday, 3),
    "d": lambda m: str(_day(m)),
    "do": lambda m: _ordinal(_day(m)),
    "dd": lambda m: _WEEKDAYS[_day(m)][:2],
    "ddd": lambda m: _WEEKDAYS[_day(m)][:3],
    "dddd": lambda m: _WEEKDAYS[_day(m)],
    "e": lambda m: str((_day(m) + 7 - _LOCALE_DOW) % 7),
    "E": lambda m: str(_day(m) or 7),
    "w": lambda m: str(_week_of_year(m, _LOCALE_DOW, _LOCALE_DOY)[0]),
    "wo": lambda m: _ordinal(_week_of_year(m, _LOCALE_DOW, _LOCALE_DOY)[0]),
    "ww": lambda m: _zero_fill(_week_of_year(m, _LOCALE_DOW, _LOCALE_DOY)[0], 2),
    "W": lambda m: str(_week_of_year(m, _ISO_DOW, _ISO_DOY)[0]),
    "Wo": lambda m: _ordinal(_week_of_year(m, _ISO_DOW, _ISO_DOY)[0]),
    "WW": lambda m: _zero_fill(_week_of_year(m, _ISO_DOW, _ISO_DOY)[0], 2),
    "Y": lambda m: _zero_fill(m.year, 4) if m.year <= 9999 else f"+{m.year}",
    "YY": lambda m: _zero_fill(m.year % 100, 2),
    "YYYY": lambda m: _zero_fill(m.year, 4),
    "YYYYY": lambda m: _zero_fill(m.year, 5),
    "YYYYYY": lambda m: _zero_fill(m.year, 6, True),
    "y": lambda m: str(m.year),
    "yo": lambda m: _ordinal(m.year),
    "yy": lambda m: _zero_fill(m.year, 2),
    "yyy": lambda m: _zero_fill(m.year, 3),
    "yyyy": lambda m: _zero_fill(m.year, 4),
    "N": lambda m: "AD",
    "NN": lambda m: "AD",
    "NNN": lambda m: "AD",
    "NNNN": lambda m: "Anno Domini",
    "NNNNN": lambda m: "AD",
    "gg": lambda m: _zero_fill(_week_of_year(m, _LOCALE_DOW, _LOCALE_DOY)[1] % 100, 2),
    "gggg": lambda m: _zero_fill(_week_of_year(m, _LOCALE_DOW, _LOCALE_DOY)[1], 4),
    "ggggg": lambda m: _zero_fill(_week_of_year(m, _LOCALE_DOW, _LOCALE_DOY)[1], 5),
    "GG": lambda m: _zero_fill(_week_of_year(m, _ISO_DOW, _ISO_DOY)[1] % 100, 2),
    "GGGG": lambda m: _zero_fill(_week_of_year(m, _ISO_DOW, _ISO_DOY)[1], 4),
    "GGGGG": lambda m: _zero_fill(_week_of_year(m, _ISO_DOW, _ISO_DOY)[1], 5),
    "a": lambda m: "pm" if m.hour > 11 else "am",
    "A": lambda m: "PM" if m.hour > 11 else "AM",
    "H": lambda m: str(m.hour),
    "HH": lambda m: _zero_fill(m.hour, 2),
    "h": lambda m: str(_h12(m)),
    "hh": lambda m: _zero_fill(_h12(m), 2),
    "k": lambda m: str(m.hour or 24),
    "kk": lambda m: _zero_fill(m.hour or 24, 2),
    "hmm": lambda m: f"{_h12(m)}{_zero_fill(m.minute, 2)}",
    "hmmss": lambda m: f"{_h12(m)}{_zero_fill(m.minute, 2)}{_zero_fill(m.second, 2)}",
    "Hmm": lambda m: f"{m.hour}{_zero_fill(m.minute, 2)}",
    "Hmmss": lambda m: f"{m.hour}{_zero_fill(m.minute, 2)}{_zero_fill(m.second, 2)}",
    "m": lambda m: str(m.minute),
    "mm": lambda m: _zero_fill(m.minute, 2),
    "s": lambda m: str(m.second),
    "ss": lambda m: _zero_fill(m.second, 2),
    "X": lambda m: str(math.floor(m.timestamp())),
    "x": lambda m: str(math.floor(m.timestamp()) * 1000 + _ms(m)),
    "z": lambda m: m.tzname() or "",
    "zz": lambda m: m.tzname() or "",
    "Z": lambda m: _offset(m, ":"),
    "ZZ": lambda m: _offset(m, ""),
}
_TOKENS.update({"S" * n: _fraction(n) for n in range(1, 10)})


def _remove_formatting_tokens(text: str) -> str:
    if re.search(r"\[[\s\S]", text):
        return re.sub(r"^\[|\]$", "", text)
    return text.replace("\\", "")


def _expand_locale_tokens(fmt: str) -> str:
    for _ in range(5):
        expanded = _LOCAL_FORMATTING_TOKENS.sub(lambda m: _LONG_DATE_FORMATS.get(m.group(0), m.group(0)), fmt)
        if expanded == fmt:
            break
        fmt = expanded
    return fmt


@lru_cache(maxsize=64)
def _compile(fmt: str) -> tuple[str | Callable[[datetime], str], ...]:
    pieces: list[str | Callable[[datetime], str]] = []
    for match in _FORMATTING_TOKENS.finditer(_expand_locale_tokens(fmt)):
        text = match.group(0)
        pieces.append(_TOKENS.get(text) or _remove_formatting_tokens(text))
    return tuple(pieces)


@lru_cache(maxsize=64)
def resolve_zone(name: str) -> tzinfo:
    """The IANA zone ``name`` (case-insensitive), or UTC when the name is unknown."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        pass
    wanted = name.lower()
    for candidate in available_timezones():
        if candidate.lower() == wanted:
            return ZoneInfo(candidate)
    return UTC


def format_moment(instant: datetime, fmt: str | None, zone: str = "UTC") -> str:
    """Format ``instant`` in ``zone`` like moment; ``fmt`` ``None``/``""`` means the default format."""
    local = instant.astimezone(resolve_zone(zone))
    if not fmt:
        fmt = _DEFAULT_FORMAT_UTC if (local.utcoffset() or timedelta(0)) == timedelta(0) else _DEFAULT_FORMAT
    return "".join(piece if isinstance(piece, str) else piece(local) for piece in _compile(fmt))
