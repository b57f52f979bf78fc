"""Damage sliders: ipywidgets for a live kernel, and a self-contained HTML/JS version for the
static book (precomputed frames switched in the browser; no CDN, no kernel)."""

from __future__ import annotations

import base64
import hashlib
import io
import json

import torch

__all__ = ["damage_sliders", "static_damage_slider", "image_data_url"]

LEVELS = [round(i / 10, 1) for i in range(11)]


def image_data_url(x: torch.Tensor, fmt: str = "PNG") -> str:
    """A grayscale image in ``[-1, 1]`` as a ``data:`` URL (``fmt``: ``"PNG"`` or ``"JPEG"``)."""
    from PIL import Image

    from repair.images import to_uint8

    buffer = io.BytesIO()
    options = {"quality": 85} if fmt == "JPEG" else {"optimize": True}
    Image.fromarray(to_uint8(x), mode="L").save(buffer, format=fmt, **options)
    return f"data:image/{fmt.lower()};base64," + base64.b64encode(buffer.getvalue()).decode()


def damage_sliders(x_clean: torch.Tensor, seed: int = 0, blur: float = 0.4, splotches: float = 0.5,
                   cracks: float = 0.5, contrast: float = 0.5):
    """ipywidgets sliders (one per damage strength, plus the seed) that re-damage ``x_clean``.

    Needs a live kernel (Jupyter, Colab, Kaggle). Returns the widget.
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    from repair.damage import damage

    def show(seed, blur, splotches, cracks, contrast):
        """Draw the clean photo, its damaged version and the mask for these settings."""
        x_damaged, mask = damage(x_clean, seed=seed, blur=blur, splotches=splotches, cracks=cracks,
                                 contrast=contrast)
        from repair.plots import show_images
        show_images([x_clean, x_damaged, mask], ["x_clean", "x_damaged", "mask"])
        plt.close("all")

    def slider(value, name):
        """A 0-1 strength slider named like the damage parameter."""
        return widgets.FloatSlider(value=value, min=0.0, max=1.0, step=0.05, description=name,
                                   continuous_update=False)

    return widgets.interactive(
        show, seed=widgets.IntSlider(value=seed, min=0, max=99, description="seed",
                                     continuous_update=False),
        blur=slider(blur, "blur"), splotches=slider(splotches, "splotches"),
        cracks=slider(cracks, "cracks"), contrast=slider(contrast, "contrast"))


def static_damage_slider(x_clean: torch.Tensor, seed: int = 0, max_side: int = 192) -> str:
    """HTML for a damage picker and a strength slider (0 to 1 in steps of 0.1) over precomputed
    frames of ``x_clean``; "all" scales the paper's mix. Display with ``IPython.display.HTML``.

    Frames are JPEGs of at most ``max_side`` pixels (55 of them), so the page stays small.
    """
    from repair.damage import DAMAGES, PAPER_MIX, damage

    if max(x_clean.shape[-2:]) > max_side:
        import torch.nn.functional as F
        x_clean = F.interpolate(x_clean[None], size=max_side, mode="bilinear", antialias=True)[0]

    frames: dict[str, list[str]] = {}
    for kind in (*DAMAGES, "all"):
        frames[kind] = []
        for level in LEVELS:
            if kind == "all":
                strengths = {name: value * level / 0.5 for name, value in PAPER_MIX.items()}
                strengths = {name: min(value, 1.0) for name, value in strengths.items()}
            else:
                strengths = {name: (level if name == kind else 0.0) for name in DAMAGES}
            frames[kind].append(image_data_url(damage(x_clean, seed=seed, **strengths)[0], "JPEG"))
    uid = "repair-slider-" + hashlib.sha1(json.dumps(frames["all"][5]).encode()).hexdigest()[:10]
    options = "".join(f'<option value="{k}"{" selected" if k == "all" else ""}>{k}</option>'
                      for k in frames)
    return f"""
<div id="{uid}" class="repair-slider" style="font-family:sans-serif;font-size:14px">
  <label>damage <select class="repair-kind">{options}</select></label>
  <label style="margin-left:1em">strength
    <input class="repair-strength" type="range" min="0" max="10" step="1" value="5"
           style="vertical-align:middle">
    <output class="repair-value">0.5</output></label><br>
  <img class="repair-frame" alt="damaged photo" src="{frames['all'][5]}"
       style="width:256px;image-rendering:pixelated;margin-top:6px">
</div>
<script>
(function() {{
  var root = document.getElementById("{uid}");
  var frames = {json.dumps(frames)};
  var kind = root.querySelector(".repair-kind"), strength = root.querySelector(".repair-strength");
  function update() {{
    root.querySelector(".repair-frame").src = frames[kind.value][+strength.value];
    root.querySelector(".repair-value").textContent = (strength.value / 10).toFixed(1);
  }}
  kind.addEventListener("change", update);
  strength.addEventListener("input", update);
}})();
</script>"""
