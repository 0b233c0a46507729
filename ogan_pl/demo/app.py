"""What the demo page does with a model, without HTTP (ogan_pl.demo.server serves it): sample,
reconstruct (the encoder alone and hybrid inversion, each with its PSNR), interpolate, and edit along
directions. Every input is checked here, so the server and the tests share one set of rules: an
uploaded image is a file of the model's size and mode, a drawing is centred and resized, and every
number is within the limits the demo was started with. Images go out as PNG bytes."""

import contextlib
import hashlib
import io
import math
import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from ogan_pl.data.convert import to_model_range, to_uint8
from ogan_pl.data.decode import DECODE_ERRORS, convert_mode, open_image
from ogan_pl.data.user_images import read_image
from ogan_pl.method.directions import combine_edits
from ogan_pl.metrics.encoder import image_quality
from ogan_pl.utils.errors import UserError

#: an MNIST digit fills a 20x20 box of its 28x28 frame, centred by its mass: drawings are placed alike
DIGIT_BOX = 20 / 28
INK_LEVEL = 32  # a drawing's pixels brighter than this (of 255) are ink
INVERSION_CACHE = 16  # codes kept per (image, steps): moving an edit slider does not invert again
MAX_WAITING = 4  # requests queued behind the running one; more are refused (Busy) rather than piled up


class Busy(UserError):
    """Too many requests wait already: the server answers 503, the page shows the line."""


@dataclass(frozen=True)
class Limits:
    """What one request may ask for (conf/demo.yaml): the server's work per click stays bounded."""

    max_upload_kb: int = 256
    max_steps: int = 300
    max_frames: int = 16
    max_samples: int = 16
    max_strength: float = 5.0
    max_drawing_side: int = 1024


def whole_number(value, key: str, low: int, high: int, limit: str | None = None) -> int:
    """`value` (from a request) as an int in [low, high], or one line naming `key` and the limit."""
    if isinstance(value, bool) or not isinstance(value, int):
        got = "nothing" if value is None else repr(value)
        raise UserError(f"{key} must be a whole number from {low} to {high}, got {got}")
    if value > high and limit is not None:
        raise UserError(
            f"{key}={value} is more than this demo allows ({limit}={high}; start ogan-demo with {limit}=N for more)"
        )
    if not low <= value <= high:
        raise UserError(f"{key} must be a whole number from {low} to {high}, got {value}")
    return value


def png(image: Tensor) -> bytes:
    """One image (C, R, R) in [-1, 1] -> PNG bytes, grayscale (L) or RGB as the model's images are:
    a result can be uploaded again as it is."""
    pixels = to_uint8(image.detach().cpu()).numpy()
    picture = Image.fromarray(pixels[0], "L") if pixels.shape[0] == 1 else Image.fromarray(pixels.transpose(1, 2, 0))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def centre_strokes(ink: np.ndarray, resolution: int) -> np.ndarray:
    """A drawing (H, W) uint8, light ink on black, as an MNIST digit: the strokes' bounding box
    scaled to fit DIGIT_BOX of the frame, then placed so that their centre of mass is the frame's."""
    rows, cols = np.flatnonzero(ink.max(1) > INK_LEVEL), np.flatnonzero(ink.max(0) > INK_LEVEL)
    if len(rows) == 0:
        raise UserError("the drawing is empty: draw on the pad first (light strokes on the black pad)")
    crop = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    scale = max(1, round(resolution * DIGIT_BOX)) / max(crop.shape)
    height, width = (max(1, round(side * scale)) for side in crop.shape)
    small = np.asarray(Image.fromarray(crop).resize((width, height), Image.Resampling.LANCZOS), dtype=np.float64)
    mass = small.sum()
    centre_y = (small.sum(1) @ np.arange(height)) / mass
    centre_x = (small.sum(0) @ np.arange(width)) / mass
    top = int(np.clip(round((resolution - 1) / 2 - centre_y), 0, resolution - height))
    left = int(np.clip(round((resolution - 1) / 2 - centre_x), 0, resolution - width))
    frame = np.zeros((resolution, resolution), np.uint8)
    frame[top : top + height, left : left + width] = np.clip(np.rint(small), 0, 255).astype(np.uint8)
    return frame


class Demo:
    """A trained model (eval mode) and the directions it edits along, behind the page's five actions.
    The page's requests come on several threads: each takes its `turn()`, one at a time."""

    def __init__(
        self,
        model,
        directions: Tensor | None = None,
        names: list[str] = (),
        limits: Limits = Limits(),
        use_ema: bool = True,
        ckpt: str = "",
    ):
        self.model = model
        self.directions = directions
        self.names = list(names)
        self.limits = limits
        self.use_ema = use_ema
        self.ckpt = ckpt
        dataset = model.hparams.config["dataset"]
        self.resolution, self.channels = int(dataset["resolution"]), int(dataset["channels"])
        self._lock = threading.Lock()  # one action computes at a time
        self._counting = threading.Lock()  # guards _pending and closed
        self._pending = 0
        self.closed = False
        self._codes: OrderedDict[tuple[str, int], Tensor] = OrderedDict()

    @contextlib.contextmanager
    def turn(self):
        """A request's turn at the model (the server holds one around each action, from reading its
        images to writing its PNGs): after the ones before it, unless MAX_WAITING already wait or the
        demo is closing."""
        with self._counting:
            if self.closed:
                raise UserError("the demo is closing")
            if self._pending > MAX_WAITING:
                raise Busy(f"the demo is busy with {self._pending} earlier requests; try again when they are done")
            self._pending += 1
        try:
            with self._lock:
                if self.closed:
                    raise UserError("the demo is closing")
                yield
        finally:
            with self._counting:
                self._pending -= 1

    def close(self) -> None:
        """No new work; returns once the action that is computing (if any) has finished. Afterwards no
        thread touches the model, so the process can exit while request threads still wait."""
        with self._counting:
            self.closed = True
        self._lock.acquire()

    @property
    def busy(self) -> bool:
        return self._lock.locked()

    def info(self) -> dict:
        """What the page shows and bounds its controls by."""
        return {
            "ckpt": self.ckpt,
            "g_iter": self.model.g_iter,
            "resolution": self.resolution,
            "channels": self.channels,
            "z_dim": self.model.z_dim,
            "weights": "EMA" if self.use_ema and self.model.has_ema else "raw",
            "directions": self.names,
            "limits": asdict(self.limits),
        }

    # ---------------------------------------------------------------- images in
    def read(self, data: bytes, name: str, drawn: bool = False) -> Tensor:
        """An uploaded file (checked: an image of the model's size and mode) or a drawing from the pad
        (any size up to max_drawing_side, centred and resized) -> (1, C, R, R) in [-1, 1]."""
        limit = self.limits.max_upload_kb
        if len(data) > limit * 1024:
            raise UserError(
                f"{name} is {math.ceil(len(data) / 1024)} KB; this demo takes files up to {limit} KB "
                "(start ogan-demo with max_upload_kb=N for more)"
            )
        if not drawn:
            kind = "grayscale" if self.channels == 1 else "RGB"
            hint = f"give a {self.resolution}x{self.resolution} {kind} image, or draw one on the pad"
            unreadable = "choose a PNG, JPEG, WEBP, BMP, TIFF or GIF file"
            image = read_image(data, self.resolution, self.channels, False, name, hint, unreadable)
            return to_model_range(image)[None]
        return to_model_range(torch.from_numpy(self._drawing(data, name)))[None]

    def _drawing(self, data: bytes, name: str) -> np.ndarray:
        try:
            with open_image(data) as img:
                if max(img.size) > self.limits.max_drawing_side:
                    raise UserError(
                        f"{name} is {img.size[0]}x{img.size[1]}; a drawing may be at most "
                        f"{self.limits.max_drawing_side} pixels on a side"
                    )
                img.load()
                picture = convert_mode(img, self.channels)
        except DECODE_ERRORS as err:
            raise UserError(f"{name} cannot be decoded as an image ({type(err).__name__})") from None
        if self.channels == 1:
            return centre_strokes(np.asarray(picture), self.resolution)[None]
        side = (self.resolution, self.resolution)
        return np.asarray(picture.resize(side, Image.Resampling.LANCZOS)).transpose(2, 0, 1).copy()

    # ---------------------------------------------------------------- actions
    def sample(self, seed, n) -> list[bytes]:
        """n images from z ~ N(0, I) drawn with `seed` (the same seed, the same images)."""
        seed = whole_number(seed, "seed", 0, 2**63 - 1)
        n = whole_number(n, "n", 1, self.limits.max_samples, "max_samples")
        return [png(image) for image in self.model.sample(n, seed, self.use_ema)]

    def reconstruct(self, x: Tensor, steps) -> dict:
        """x next to G(s N(E(x))) (the encoder alone) and to G(z) after `steps` of hybrid inversion
        (ogan-invert's default settings), with the PSNR of each against x."""
        steps = whole_number(steps, "steps", 0, self.limits.max_steps, "max_steps")
        encoder = self.model.reconstruct(x, self.use_ema)
        inverted = self.model.decode(self._code(x, steps), self.use_ema)
        return {
            "encoder": png(encoder[0]),
            "inversion": png(inverted[0]),
            "psnr_encoder": round(image_quality(encoder, x)[0][0].item(), 2),
            "psnr_inversion": round(image_quality(inverted, x)[0][0].item(), 2),
            "steps": steps,
        }

    def interpolate(self, a: Tensor, b: Tensor, frames, steps=0) -> list[bytes]:
        """G((1 - t) z_a + t z_b) for `frames` values of t from 0 to 1, z the codes of a and b (the
        encoder's, or after `steps` of inversion)."""
        frames = whole_number(frames, "frames", 2, self.limits.max_frames, "max_frames")
        steps = whole_number(steps, "steps", 0, self.limits.max_steps, "max_steps")
        path = self.model.interpolate_latents(self._code(a, steps), self._code(b, steps), frames, self.use_ema)
        return [png(image) for image in path[0]]

    def edit(self, x: Tensor, strengths, steps=0) -> dict:
        """G(z + sum_k a_k d_k), one strength a_k per direction of the file, z the code of x."""
        if self.directions is None:
            raise UserError("this demo was started without directions; start it with directions=FILE (ogan-directions)")
        bound = self.limits.max_strength
        if not (
            isinstance(strengths, list)
            and len(strengths) == len(self.names)
            and all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in strengths)
            and all(abs(a) <= bound for a in strengths)  # False for NaN and inf; no overflow for huge ints
        ):
            raise UserError(
                f"strengths must be a list of {len(self.names)} numbers from {-bound} to {bound} "
                "(one per direction; max_strength)"
            )
        steps = whole_number(steps, "steps", 0, self.limits.max_steps, "max_steps")
        z = self._code(x, steps)
        edited = self.model.decode(combine_edits(z, self.directions, torch.tensor(strengths)), self.use_ema)
        unedited = self.model.decode(z, self.use_ema)
        return {"edited": png(edited[0]), "unedited": png(unedited[0])}

    def _code(self, x: Tensor, steps: int) -> Tensor:
        """The code of x: s N(E(x)) (steps 0) or hybrid inversion's, kept for the next request."""
        key = (hashlib.sha256(x.numpy().tobytes()).hexdigest(), steps)
        if key in self._codes:
            self._codes.move_to_end(key)
            return self._codes[key]
        z = self.model.invert(x, steps=steps, use_ema=self.use_ema).z if steps else self.model.latent(x, self.use_ema)
        self._codes[key] = z.detach()
        while len(self._codes) > INVERSION_CACHE:
            self._codes.popitem(last=False)
        return self._codes[key]
