"""Kubernetes primitives in plain Python: resource quantities as the API server parses them.

Quantity grammar (kubernetes apimachinery pkg/api/resource/quantity.go, ``ParseQuantity``)::

    <quantity>        ::= <signedNumber><suffix>
    <suffix>          ::= <binarySI> | <decimalExponent> | <decimalSI>
    <binarySI>        ::= Ki | Mi | Gi | Ti | Pi | Ei
    <decimalSI>       ::= n | u | m | "" | k | M | G | T | P | E
    <decimalExponent> ::= "e" <signedNumber> | "E" <signedNumber>

Values are exact (``fractions.Fraction``). ``Quantity.MilliValue()`` and ``Value()`` round up, so do ``millis``
and ``integer``: ``0.0001`` CPU is 1m, ``0.5`` bytes is 1 byte.
"""

import math
import re
from fractions import Fraction

from ansible_collections.katafleet.kata.plugins.module_utils.katafleet.errors import KatafleetError

BINARY_SI = {"Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40, "Pi": 2 ** 50, "Ei": 2 ** 60}
DECIMAL_SI = {"n": Fraction(1, 10 ** 9), "u": Fraction(1, 10 ** 6), "m": Fraction(1, 1000), "": 1,
              "k": 10 ** 3, "M": 10 ** 6, "G": 10 ** 9, "T": 10 ** 12, "P": 10 ** 15, "E": 10 ** 18}
QUANTITY_RULE = "Kubernetes quantity: a number with an optional suffix (500m, 1.5, 1Gi, 1G, 128974848, 129e6)"
MIB = 2 ** 20

# digits with an optional fraction (either side may be empty, not both), then a suffix or an exponent
_NUMBER = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
_QUANTITY_RE = re.compile(r"^(%s)(?:([eE])([+-]?[0-9]+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]?))$" % _NUMBER)


def parse_quantity(text, where=None):
    """A quantity (str, int or float from YAML) -> exact Fraction; KatafleetError naming ``where`` otherwise.

    ``where``: dict of KatafleetError fields (path, key) that name the file, object, container and field."""
    where = where or {}
    if isinstance(text, bool) or text is None:
        raise KatafleetError("not a Kubernetes quantity", value=text, rule=QUANTITY_RULE, **where)
    if isinstance(text, int):
        return Fraction(text)
    if isinstance(text, float):
        if math.isnan(text) or math.isinf(text):
            raise KatafleetError("not a Kubernetes quantity", value=text, rule=QUANTITY_RULE, **where)
        text = repr(text)
    s = str(text).strip()
    m = _QUANTITY_RE.match(s)
    if not m:
        raise KatafleetError("not a Kubernetes quantity", value=text, rule=QUANTITY_RULE, **where)
    number = Fraction(m.group(1))
    if m.group(2):
        exp = int(m.group(3))
        if abs(exp) > 100:
            raise KatafleetError("exponent out of range", value=text, rule=QUANTITY_RULE, **where)
        return number * Fraction(10) ** exp
    suffix = m.group(4)
    return number * (BINARY_SI.get(suffix) or DECIMAL_SI[suffix])


def parse_resource(text, where=None):
    """A container resource quantity: a quantity that is not negative (Kubernetes validation)."""
    value = parse_quantity(text, where)
    if value < 0:
        raise KatafleetError("must not be negative", value=text, rule="resource quantities are >= 0", **(where or {}))
    return value


def millis(value):
    """Quantity.MilliValue(): thousandths, rounded up ('500m' -> 500, '1.5' -> 1500)."""
    return int(math.ceil(Fraction(value) * 1000))


def integer(value):
    """Quantity.Value(): rounded up to a whole number ('129e6' -> 129000000 bytes)."""
    return int(math.ceil(Fraction(value)))


def mib(nbytes):
    """Bytes -> MiB for reports: an int when whole, else rounded to 2 decimals."""
    value = Fraction(nbytes) / MIB
    if value.denominator == 1:
        return int(value)
    return round(float(value), 2)
