"""Pictures of results: the original-vs-refined comparison grid and vertical stacking of grids (PIL only)."""

from __future__ import annotations

import textwrap


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: fixed-size bitmap font
        return ImageFont.load_default()


def comparison_grid(result, tile: int | None = None):
    """Two rows (original, refined), one column per seed; each row captioned with its prompt, each tile with
    its seed and scores. ``result`` is a ``CompareResult``. PIL only."""
    from PIL import Image, ImageDraw

    orig_images, ref_images = result.images["original"], result.images["refined"]
    texts = {"original": result.original, "refined": result.refined}

    tile = tile or max(192, min(512, max(im.width for im in list(orig_images) + list(ref_images))))
    pad, font = 8, _font(14)
    cols = max(len(orig_images), len(ref_images))
    width = cols * (tile + pad) + pad
    chars = max(20, width // 8)
    rows = []
    for which, imgs in (("original", orig_images), ("refined", ref_images)):
        caption = textwrap.wrap(f"{which}: {texts[which]}", chars)[:4]
        labels = []
        for j, seed in enumerate(result.seeds[: len(imgs)]):
            parts = [f"seed {seed}"] + [f"{k} {v[j]:.3f}" for k, v in result.scores[which].items()]
            labels.append(textwrap.wrap("  ".join(parts), max(12, tile // 8))[:3])
        rows.append((caption, imgs, labels))
    line = 18
    height = pad
    for caption, _, labels in rows:
        height += line * len(caption) + tile + line * max(len(lab) for lab in labels) + 2 * pad
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    y = pad
    for caption, imgs, labels in rows:
        for text in caption:
            draw.text((pad, y), text, fill="black", font=font)
            y += line
        for j, im in enumerate(imgs):
            x = pad + j * (tile + pad)
            canvas.paste(im.convert("RGB").resize((tile, tile), Image.NEAREST if im.width < tile else Image.BICUBIC),
                         (x, y))
            for n, text in enumerate(labels[j]):
                draw.text((x, y + tile + 2 + n * line), text, fill="dimgray", font=font)
        y += tile + line * max(len(lab) for lab in labels) + 2 * pad
    return canvas


def stack_vertically(images, gap: int = 6):
    """One image holding ``images`` top to bottom on white, ``gap`` pixels apart."""
    from PIL import Image

    width = max(im.width for im in images)
    out = Image.new("RGB", (width, sum(im.height for im in images) + gap * (len(images) - 1)), "white")
    y = 0
    for im in images:
        out.paste(im, (0, y))
        y += im.height + gap
    return out


REGION_COLORS = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4")


def draw_regions(image, regions, size: int = 256):
    """Each region's box outlined in its own colour with its prompt, over ``image`` (or a white canvas) resized to
    ``size`` pixels wide. Mask regions are drawn as their bounding box."""
    import numpy as np
    from PIL import Image, ImageDraw

    if image is None:
        canvas = Image.new("RGB", (size, size), "white")
    else:
        image = image.convert("RGB")
        canvas = image.resize((size, max(1, round(size * image.height / image.width))), Image.NEAREST)
    draw = ImageDraw.Draw(canvas)
    font = _font(12)
    w, h = canvas.size
    for i, region in enumerate(regions):
        if region.box is not None:
            x0, y0, x1, y1 = region.box
        else:
            mask = np.asarray(region.mask, dtype=np.float32).squeeze()
            ys, xs = np.nonzero(mask > (127.5 if mask.max() > 1 else 0.5))  # bounding box in the mask's own grid
            if not len(xs):
                continue
            mh, mw = mask.shape
            x0, y0, x1, y1 = xs.min() / mw, ys.min() / mh, (xs.max() + 1) / mw, (ys.max() + 1) / mh
        color = REGION_COLORS[i % len(REGION_COLORS)]
        box = (round(x0 * w), round(y0 * h), round(x1 * w) - 1, round(y1 * h) - 1)
        draw.rectangle(box, outline=color, width=3)
        draw.text((box[0] + 4, box[1] + 3), textwrap.shorten(region.prompt, 40), fill=color, font=font)
    return canvas
