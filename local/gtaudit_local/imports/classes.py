"""From a source's mask values to the run's classes: index masks, colour masks, one rule for names.

Every source says what its values mean: Ground Truth's ``internal-color-map`` (index -> class name
and colour), COCO's ``categories`` (id -> name), ``legend.json`` of the ``masks`` export layout,
VOC's ``labels.txt`` (line *i* is class *i*), or nothing (then value *i* is the run's label *i* and
a colour is the run's colour of that label). A :class:`ClassMap` holds that meaning and maps it
onto the run's label set:

* a class is matched **by name, case-sensitively**; a class named ``BACKGROUND`` (in any case) is
  the run's background, 0, and so are value 0 and white ``#ffffff`` unless the source gives them
  another class;
* a value or colour the source does not define is an error of that object ("colour #123456 (40
  pixels) is not in the colour map"), and so is a class the run's label set lacks; a class that
  is defined but never used by a mask is no error;
* colours are matched exactly (an imported mask is a file, not a brush stroke: no snapping); a
  pixel with alpha below 128 is background, as in a worker's painted mask.

An index mask (grey ``L``/``I``, 1-bit, or a palette image read by index) is mapped by value, a
colour mask (``RGB``/``RGBA``, or a palette image read by colour) by colour.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

import numpy as np
from gtaudit.exceptions import InvalidLabelSetError
from gtaudit.labeling.masks import ALPHA_OPAQUE
from gtaudit.labels import BACKGROUND, BACKGROUND_COLOR, LabelSet, normalize_color
from PIL import Image

from gtaudit_local.imports.sources import Refused

_TRANSPARENT = -1  # the key of a transparent pixel: background whatever the colour map says
_SHOWN = 3  # how many unknown values a reason lists


def _pack(color: str) -> int:
    value = normalize_color(color)
    return int(value[1:], 16)


class ClassMap:
    """What one source's values and colours mean, mapped onto the run's classes.

    Parameters
    ----------
    classes
        ``(value, class name, "#rrggbb" or None)`` for each class the source defines.
    labels
        The run's label set.
    what
        How reasons name the source's definition, e.g. ``"the colour map"``, ``"legend.json"``.

    Raises
    ------
    Refused
        A colour that is not ``#rrggbb``.
    """

    def __init__(self, classes: Iterable[tuple[int, str, str | None]], labels: LabelSet, what: str) -> None:
        self.labels, self.what = labels, what
        self.names: dict[int, str] = {}
        self.colours: dict[int, str] = {}
        for value, name, colour in classes:
            self.names[value] = name
            if colour is not None:
                try:
                    self.colours.setdefault(_pack(colour), name)
                except InvalidLabelSetError as exc:
                    raise Refused(f"{what}: class {name!r}: {exc}") from exc
        # Every convention here (Ground Truth's, VOC's, our exports') leaves value 0 and white to the background.
        self.names.setdefault(0, BACKGROUND)
        self.colours.setdefault(_pack(BACKGROUND_COLOR), BACKGROUND)
        self._index = {name: i for i, name in enumerate(labels.names, start=1)}

    @classmethod
    def of_run(cls, labels: LabelSet) -> ClassMap:
        """The run's own classes: value *i* and the colour of label *i* (0 and white: background)."""
        entries = labels.color_map()
        return cls(
            ((int(k), e["class-name"], e["hex-color"]) for k, e in entries.items()), labels, "the run's label set"
        )

    def run_class(self, name: str) -> int | None:
        """The run's class index of a source class name, None if the run's label set lacks it."""
        if name.casefold() == BACKGROUND.casefold():
            return 0
        return self._index.get(name)

    def value(self, value: object, what: str = "value") -> int:
        """The run's class of one source value (a COCO ``category_id``); ``what`` names it in the reason.

        Raises
        ------
        Refused
            The source does not define ``value``, or the run's label set lacks its class.
        """
        name = self.names.get(value) if isinstance(value, int) and not isinstance(value, bool) else None
        if name is None:
            raise Refused(f"{what} {value!r} is not in {self.what}")
        index = self.run_class(name)
        if index is None:
            raise Refused(self._foreign([name]))
        return index

    def _foreign(self, names: list[str]) -> str:
        shown = ", ".join(repr(n) for n in names)
        return f"class {shown} is not in the run's label set ({', '.join(self.labels.names)})"

    def _map(self, keys: np.ndarray, table: Mapping[int, str], describe: Literal["value", "colour"]) -> np.ndarray:
        values, inverse = np.unique(keys.reshape(-1), return_inverse=True)
        counts = np.bincount(inverse, minlength=len(values))
        mapped = np.zeros(len(values), dtype=np.uint8)
        unknown: list[str] = []
        foreign: list[str] = []
        for i, key in enumerate(values.tolist()):
            if key == _TRANSPARENT:
                continue
            name = table.get(key)
            if name is None:
                shown = f"colour #{key:06x}" if describe == "colour" else f"value {key}"
                n = int(counts[i])
                unknown.append(f"{shown} ({n} pixel{'' if n == 1 else 's'})")
                continue
            index = self.run_class(name)
            if index is None:
                foreign.append(name)
                continue
            mapped[i] = index
        if unknown:
            more = f" and {len(unknown) - _SHOWN} more" if len(unknown) > _SHOWN else ""
            verb = "is" if len(unknown) == 1 else "are"
            raise Refused(f"{', '.join(unknown[:_SHOWN])}{more} {verb} not in {self.what}")
        if foreign:
            raise Refused(self._foreign(sorted(set(foreign))))
        classes: np.ndarray = mapped[inverse].reshape(keys.shape)
        return classes

    def by_value(self, values: np.ndarray) -> np.ndarray:
        """An index mask's values as the run's classes (``uint8``, same shape)."""
        return self._map(values.astype(np.int64), self.names, "value")

    def by_colour(self, rgba: np.ndarray) -> np.ndarray:
        """An ``(h, w, 3|4)`` colour mask as the run's classes; alpha below 128 is background."""
        rgb = rgba[..., :3].astype(np.int64)
        keys = rgb[..., 0] << 16 | rgb[..., 1] << 8 | rgb[..., 2]
        if rgba.shape[-1] == 4:
            keys[rgba[..., 3] < ALPHA_OPAQUE] = _TRANSPARENT
        return self._map(keys, self.colours, "colour")

    def decode(self, im: Image.Image, *, palette: Literal["index", "colour"]) -> np.ndarray:
        """A loaded mask image as the run's classes (``uint8``, ``(height, width)``).

        ``palette`` says how a palette (``P``) image is read: by its indices (VOC, our own masks)
        or by the colours its palette gives them (Ground Truth's output).

        Raises
        ------
        Refused
            A value or colour the source does not define, a class the run lacks, or a mode no mask has.
        """
        mode = im.mode
        if mode in ("L", "I", "I;16", "1") or (mode == "P" and palette == "index"):
            return self.by_value(np.asarray(im))
        if mode in ("RGB", "RGBA", "P", "LA", "PA"):
            return self.by_colour(np.asarray(im.convert("RGBA")))
        raise Refused(f"mask mode {mode} is neither an index nor a colour mask")
