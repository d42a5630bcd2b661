"""Technology files: loading, units, inheritance, overrides and the errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from simulator.configs import CostConfig, RPUConfig
from simulator.configs.cost import constant_names, constant_unit
from simulator.cost import units, yamlish
from simulator.cost.technology import TECH_DIR, load_technology, resolve, shipped_technologies
from simulator.errors import ConfigError


def test_every_shipped_technology_is_complete_with_units_and_sources() -> None:
    names = shipped_technologies()
    assert {"rram22", "pcm22", "ecram22", "capacitor22", "isaac32"} <= set(names)
    for name in names:
        tech = load_technology(name)
        assert set(tech.values) == set(constant_names())
        assert all(tech.sources[n].strip() for n in constant_names())


def test_the_subset_reader_agrees_with_pyyaml_on_the_shipped_files() -> None:
    for path in sorted(TECH_DIR.glob("*.yaml")):
        text = path.read_text()
        assert yamlish.loads(text) == yaml.safe_load(text), path.name


@pytest.mark.parametrize("text, message", [
    ("a: 1\na: 2\n", "duplicate key"),
    ("a:\n  - 1\n", "block sequences"),
    ("a: {b: 1\n", "missing '}'"),
    ("a: &x 1\n", "anchors"),
    ("a:\n\tb: 1\n", "tabs"),
    ("a: 1e-3\n", "decimal point"),
])
def test_the_subset_reader_rejects_what_it_does_not_accept_with_the_line(text: str, message: str) -> None:
    with pytest.raises(yamlish.YamlError, match=message) as err:
        yamlish.loads(text)
    assert str(err.value).startswith("line ")


def test_units_convert_within_a_dimension_and_refuse_across() -> None:
    assert units.convert(1.0, "nJ", "pJ") == pytest.approx(1000.0)
    assert units.convert(0.2, "fF/um", "fF/um") == pytest.approx(0.2)
    assert units.convert(0.0096, "mm^2", "um^2") == pytest.approx(9600.0)
    assert units.convert(1.7, "Mohm", "ohm") == pytest.approx(1.7e6)
    assert units.convert(1.28, "GHz", "GHz") == 1.28
    with pytest.raises(ValueError, match="energy"):
        units.convert(1.0, "pJ", "ns")
    with pytest.raises(ValueError, match="unknown unit"):
        units.convert(1.0, "parsec", "ns")


def test_constants_given_in_other_units_are_converted(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("name: t\ninherits: rram22\nconstants:\n"
                    "  e_pulse: {value: 2.0, unit: nJ, source: test}\n"
                    "  t_read: {value: 0.02, unit: us, source: test}\n"
                    "  a_cell: {value: 1.0e-7, unit: mm^2, source: test}\n")
    tech = load_technology(str(path))
    assert tech["e_pulse"] == pytest.approx(2000.0)          # pJ
    assert tech["t_read"] == pytest.approx(20.0)             # ns
    assert tech["a_cell"] == pytest.approx(0.1)              # um^2
    assert tech["c_wire"] == load_technology("rram22")["c_wire"]  # inherited
    assert tech.sources["e_pulse"] == "test"


@pytest.mark.parametrize("entry, key, message", [
    ("bogus: {value: 1, unit: pJ, source: s}", "cost.bogus", "unknown constant"),
    ("e_pulse: {value: 1, source: s}", "cost.e_pulse", "missing unit"),
    ("e_pulse: {value: 1, unit: ns, source: s}", "cost.e_pulse", "time"),
    ("e_pulse: {value: -1.0, unit: pJ, source: s}", "cost.e_pulse", "got -1"),
    ("e_pulse: {value: .inf, unit: pJ, source: s}", "cost.e_pulse", "finite number"),
    ("e_pulse: {value: 1, unit: pJ}", "cost.e_pulse", "missing source"),
    ("e_pulse: 1.0", "cost.e_pulse", "accepted"),
    ("cols_per_adc: {value: 0, unit: count, source: s}", "cost.cols_per_adc", "got 0"),
    ("adc_model: {value: flash, source: s}", "cost.adc_model", "neurosim_sar"),
    ("e_cell_read: {value: 1, unit: pJ, source: s, note: x}", "cost.e_cell_read", "unknown key 'note'"),
])
def test_a_bad_constant_is_an_error_naming_the_key(tmp_path: Path, entry: str, key: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(f"name: bad\ninherits: rram22\nconstants:\n  {entry}\n")
    with pytest.raises(ConfigError, match=message) as err:
        load_technology(str(path))
    assert err.value.path == key
    assert str(path) in str(err.value)


def test_an_incomplete_or_unknown_technology_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "partial.yaml"
    path.write_text("name: partial\nconstants:\n  e_pulse: {value: 1.0, unit: pJ, source: s}\n")
    with pytest.raises(ConfigError, match="incomplete technology, missing adc_model"):
        load_technology(str(path))
    with pytest.raises(ConfigError, match="accepted: capacitor22, ecram22, isaac32, pcm22, rram22"):
        CostConfig(tech="rram99")
    loop = tmp_path / "loop.yaml"
    loop.write_text("name: loop\ninherits: loop.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_technology(str(loop))


def test_overrides_of_the_cost_section_replace_single_constants() -> None:
    rpu = RPUConfig().with_overrides({"cost.tech": "isaac32", "cost.cols_per_adc": 16, "cost.e_pulse": 5.0})
    tech = resolve(rpu.cost)
    assert tech.name == "isaac32"
    assert tech["cols_per_adc"] == 16 and tech.sources["cols_per_adc"] == "override"
    assert tech["e_pulse"] == 5.0
    assert tech["e_adc_ref"] == pytest.approx(1.5625)
    with pytest.raises(ConfigError, match="cost.cols_per_adc"):
        RPUConfig().with_overrides({"cost.cols_per_adc": -1})
    with pytest.raises(ConfigError, match="cost.e_pulse"):
        RPUConfig().with_overrides({"cost.e_pulse": float("nan")})


def test_every_constant_has_a_unit_declared() -> None:
    for name in constant_names():
        unit = constant_unit(name)
        assert unit == "" or unit in units.UNITS, name
