"""real2sim_node's vision_msgs/Detection3DArray adapter without ROS: `detection3d_labels` parses to
{class_id: label}, and a bad entry is refused naming the entry and the form (docs/perception.md)."""

from __future__ import annotations

import pytest

from sim2real.node_params import Real2SimNodeParams, parse_detection3d_labels


def test_the_adapter_is_off_by_default():
    p = Real2SimNodeParams()
    assert p.detection3d_topic == "" and p.detection3d_labels == ""
    assert parse_detection3d_labels(p.detection3d_labels) == {}


def test_detection3d_labels_parse():
    assert parse_detection3d_labels("handle=drawer_handle, btn = button,") == {
        "handle": "drawer_handle",
        "btn": "button",
    }
    # Two class ids may name one object (a detector with a class per colour of the button).
    assert parse_detection3d_labels("btn_red=button,btn_blue=button") == {
        "btn_red": "button",
        "btn_blue": "button",
    }


@pytest.mark.parametrize("bad", ["btn", "btn:button", "=button", "btn=", "btn=button=x"])
def test_a_bad_detection3d_labels_entry_names_itself_and_the_form(bad):
    with pytest.raises(ValueError) as e:
        parse_detection3d_labels(f"handle=drawer_handle,{bad}")
    assert f"entry {bad!r}" in str(e.value) and "must be class_id=label" in str(e.value)


def test_a_class_id_named_twice_is_refused():
    with pytest.raises(ValueError, match="names class_id 'btn' twice"):
        parse_detection3d_labels("btn=button,btn=drawer_handle")
