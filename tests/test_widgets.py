import re

import torch

from repair.widgets import damage_sliders, static_damage_slider


def test_static_slider_has_distinct_frames(photo):
    html = static_damage_slider(photo[:, :32, :32], seed=1)
    frames = re.findall(r"data:image/\w+;base64,[A-Za-z0-9+/=]+", html)
    assert len(set(frames)) > 40  # 5 kinds x 11 strengths, most of them different
    code = re.sub(r"data:image/\w+;base64,[A-Za-z0-9+/=]+", "", html)
    assert "http" not in code and "//" not in code.replace("://", "")  # loads nothing from outside
    assert "<script" in code and 'type="range"' in code


def test_live_sliders_build(photo):
    widget = damage_sliders(photo, seed=2)
    names = {child.description for child in widget.children if hasattr(child, "description")}
    assert {"seed", "blur", "splotches", "cracks", "contrast"} <= names
