"""The filter behind the roles' preflight: unknown role-prefixed names, each with the closest known one."""

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.katafleet.kata.plugins.filter.unknown_variables import FilterModule, unknown_variables

KNOWN = {"kata_config_default_memory": {}, "kata_config_default_maxmemory": {}, "kata_config_mode": {},
         "kata_config_path": {}}


def test_known_names_pass():
    assert unknown_variables(["kata_config_mode", "kata_config_path"], KNOWN, prefix="kata_config_") == []


def test_misspelt_name_gets_the_closest_known_one():
    assert unknown_variables(["kata_config_defualt_memory", "kata_config_path"], KNOWN, prefix="kata_config_") == \
        ["kata_config_defualt_memory (did you mean kata_config_default_memory?)"]


def test_the_shared_prefix_alone_is_no_match():
    # compared without the prefix: "bogus" is close to nothing, though the full names share 12 characters
    assert unknown_variables(["kata_config_bogus"], KNOWN, prefix="kata_config_") == ["kata_config_bogus"]


def test_sorted_unique_and_known_as_list():
    names = ["kata_config_zzz", "kata_config_pth", "kata_config_pth"]
    assert unknown_variables(names, sorted(KNOWN), prefix="kata_config_") == \
        ["kata_config_pth (did you mean kata_config_path?)", "kata_config_zzz"]


@pytest.mark.parametrize("names, known", [("kata_config_x", KNOWN), (["kata_config_x"], "kata_config_path"),
                                          (None, KNOWN)])
def test_wrong_input_types(names, known):
    with pytest.raises(AnsibleFilterError):
        unknown_variables(names, known)


def test_registered_as_filter():
    assert FilterModule().filters()["unknown_variables"] is unknown_variables


def test_known_as_a_whole_argument_specs_document_counts_every_entry_point():
    doc = {"argument_specs": {"main": {"options": {"kata_verify_record_dir": {}}},
                              "record": {"options": {"kata_verify_record_part": {}, "kata_verify_record_dir": {}}},
                              "empty": {}}}
    assert unknown_variables(["kata_verify_record_part", "kata_verify_record_dri"], doc, prefix="kata_verify_") == \
        ["kata_verify_record_dri (did you mean kata_verify_record_dir?)"]
