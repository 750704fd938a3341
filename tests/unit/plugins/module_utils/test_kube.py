"""kube.py: quantities parsed as Kubernetes parses them (apimachinery pkg/api/resource/quantity.go)."""

from fractions import Fraction

import pytest

from ansible_collections.katafleet.kata.plugins.module_utils.katafleet import kube, runtimeclass
from ansible_collections.katafleet.kata.plugins.module_utils.katafleet.errors import KatafleetError


@pytest.mark.parametrize("text, value", [
    ("500m", Fraction(1, 2)),
    ("1.5", Fraction(3, 2)),
    ("1Gi", 1073741824),
    ("1G", 1000000000),
    ("128974848", 128974848),
    ("129e6", 129000000),
    ("129E6", 129000000),
    ("1E", 10 ** 18),
    ("1Ki", 1024),
    ("1k", 1000),
    ("250u", Fraction(1, 4000)),
    ("5n", Fraction(5, 10 ** 9)),
    (".5", Fraction(1, 2)),
    ("+2", 2),
    (2, 2),
    (0.5, Fraction(1, 2)),
    (" 320Mi ", 320 * 1048576),
])
def test_parse_quantity(text, value):
    assert kube.parse_quantity(text) == value


@pytest.mark.parametrize("text", ["1K", "1gi", "lots", "1e", "1.2.3", "", "Mi", "1 Gi", None, True, "1mi"])
def test_parse_quantity_refuses(text):
    with pytest.raises(KatafleetError, match="not a Kubernetes quantity"):
        kube.parse_quantity(text)


def test_error_names_where():
    with pytest.raises(KatafleetError) as exc:
        kube.parse_quantity("2 cores", {"path": "w.yaml", "key": "Pod/x, container c, field resources.limits.cpu"})
    assert str(exc.value).startswith("w.yaml, key Pod/x, container c, field resources.limits.cpu, value '2 cores'")


def test_negative_resource_refused():
    assert kube.parse_quantity("-1") == -1
    with pytest.raises(KatafleetError, match="must not be negative"):
        kube.parse_resource("-1")


def test_rounding_up_like_milli_value_and_value():
    assert kube.millis(kube.parse_quantity("0.0001")) == 1
    assert kube.millis(kube.parse_quantity("1.5")) == 1500
    assert kube.integer(kube.parse_quantity("0.5")) == 1
    assert kube.mib(1048576000) == 1000
    assert kube.mib(129000000) == 123.02


def test_runtimeclass_quantity_bytes_unchanged():
    assert runtimeclass.quantity_bytes("320Mi") == 320 * 2 ** 20
    assert runtimeclass.quantity_bytes("250m") == 0.25
    with pytest.raises(KatafleetError, match="not a Kubernetes quantity"):
        runtimeclass.quantity_bytes("-1")
