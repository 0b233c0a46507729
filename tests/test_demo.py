"""ogan-demo without a browser: what the page's actions compute (checked against independent
computations on the shipped digits model), the HTTP server's refusals, and the command as a user
starts and stops it. The page itself in Chromium: tests/test_demo_browser.py."""

import base64
import http.client
import io
import json
import math
import signal
import socket
import struct
import subprocess
import threading
import time

import numpy as np
import pytest
import torch
from PIL import Image

from ogan_pl.checkpoints import local_path, read_checkpoint
from ogan_pl.data import DigitsDataModule
from ogan_pl.data.convert import to_uint8, to_unit
from ogan_pl.demo.app import DIGIT_BOX, MAX_WAITING, Demo, Limits, centre_strokes
from ogan_pl.demo.server import PAGE_DIR, PNG_URL, DemoServer, is_loopback
from ogan_pl.edits import load_directions
from ogan_pl.module import OGAN
from ogan_pl.utils.errors import UserError
from tests.conftest import run_command_here, start_demo


@pytest.fixture(scope="module")
def model():
    return OGAN.from_pretrained("digits").eval()


@pytest.fixture(scope="module")
def demo(model):
    directions, names, _ = load_directions("pretrained:digits", model.z_dim)
    return Demo(model, directions, names, Limits(), ckpt="pretrained:digits")


@pytest.fixture(scope="module")
def digits():
    """Four held-out digits in [-1, 1], (4, 1, 32, 32)."""
    return DigitsDataModule(batch_size=8).holdout_batch(4)["image"]


def png_bytes(array: np.ndarray, mode: str | None = None) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode).save(buffer, format="PNG")
    return buffer.getvalue()


def pixels(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        assert img.mode == "L"
        return np.asarray(img)


EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 32 32\n0 0 moveto 32 32 lineto stroke\nshowpage\n"


BLACK = PNG_URL + base64.b64encode(png_bytes(np.zeros((32, 32), np.uint8))).decode()  # a 32x32 L image


def palette_png() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((32, 32), np.uint8), "L").convert("P").save(buffer, format="PNG")
    return buffer.getvalue()


def digit_png(image: torch.Tensor) -> bytes:
    return png_bytes(to_uint8(image[0, 0]).numpy())


def independent_psnr(x_hat: torch.Tensor, x: torch.Tensor) -> float:
    mse = float(((to_unit(x_hat) - to_unit(x)) ** 2).double().mean())
    return 10 * math.log10(1 / mse)


# ----------------------------------------------------------------- the actions
def test_samples_are_the_models_own_and_repeat_with_their_seed(demo, model):
    first = demo.sample(3, 4)
    assert first == demo.sample(3, 4)
    assert first != demo.sample(4, 4)
    expected = to_uint8(model.sample(4, 3)).numpy()[:, 0]
    assert np.array_equal(np.stack([pixels(p) for p in first]), expected)


def test_an_upload_is_read_exactly_and_reconstructed_with_the_psnr_shown(demo, model, digits):
    x = demo.read(digit_png(digits[:1]), "digit.png")
    assert torch.allclose(x, digits[:1], atol=1 / 127.5 + 1e-6)  # only the PNG's rounding
    result = demo.reconstruct(x, 100)
    encoder = model.reconstruct(x)
    assert np.array_equal(pixels(result["encoder"]), to_uint8(encoder[0, 0]).numpy())
    assert result["psnr_encoder"] == pytest.approx(independent_psnr(encoder, x), abs=0.006)
    inverted = model.decode(model.invert(x, steps=100).z)
    assert result["psnr_inversion"] == pytest.approx(independent_psnr(inverted, x), abs=0.006)
    assert result["psnr_inversion"] > result["psnr_encoder"] + 3  # hybrid inversion does its job
    no_steps = demo.reconstruct(x, 0)
    assert no_steps["inversion"] == no_steps["encoder"] and no_steps["psnr_inversion"] == no_steps["psnr_encoder"]


def test_the_trained_encoder_beats_an_untrained_one(demo, model, digits):
    """The page's encoder PSNR means something: the shipped model's reconstructions of held-out
    digits are far closer than a freshly initialised model's."""
    torch.manual_seed(0)
    untrained = OGAN(read_checkpoint(local_path("pretrained:digits")).recipe).eval()
    fresh = Demo(untrained, limits=Limits())
    x = [demo.read(digit_png(digits[i : i + 1]), "d.png") for i in range(4)]
    trained = np.mean([demo.reconstruct(one, 0)["psnr_encoder"] for one in x])
    baseline = np.mean([fresh.reconstruct(one, 0)["psnr_encoder"] for one in x])
    assert trained > baseline + 5, (trained, baseline)


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda: png_bytes(np.zeros((32, 32, 3), np.uint8)), "is 32x32 RGB; the model takes 32x32 grayscale"),
        (lambda: png_bytes(np.zeros((64, 64), np.uint8)), "is 64x64 L; the model takes 32x32 grayscale"),
        (lambda: png_bytes(np.zeros((32, 32), np.uint8))[:40], "cannot be decoded as an image"),
        (lambda: b"this is not an image", "cannot be decoded as an image"),
        (lambda: b"", "cannot be decoded as an image"),
        (lambda: b"\x89PNG" + bytes(300 * 1024), "is 301 KB; this demo takes files up to 256 KB"),
        (lambda: png_bytes(np.zeros((32, 32), np.uint8)).replace(b"IHDR", b"IHDX"), "cannot be decoded"),
        (lambda: EPS, "cannot be decoded as an image (UnidentifiedImageError); choose a PNG, JPEG"),
        (lambda: palette_png(), "is 32x32 P (palette); the model takes 32x32 grayscale images"),
    ],
    ids=["rgb", "size", "truncated", "text", "empty", "too-big", "bad-header", "eps", "palette"],
)
def test_a_bad_upload_is_one_line_naming_the_rule(demo, make, says):
    with pytest.raises(UserError, match=r"^mine\.png ") as err:
        demo.read(make(), "mine.png")
    assert says in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("drawn", [False, True])
def test_a_postscript_upload_starts_no_program(demo, monkeypatch, drawn):
    """PIL would hand an EPS file to Ghostscript: only raster formats are opened at all."""

    def no_programs(*args, **kwargs):
        raise AssertionError(f"an upload started a program: {args}")

    monkeypatch.setattr(subprocess, "check_call", no_programs)
    monkeypatch.setattr(subprocess, "Popen", no_programs)
    with pytest.raises(UserError, match="cannot be decoded as an image"):
        demo.read(EPS, "mine.eps", drawn=drawn)


def test_a_16_bit_grayscale_file_is_grayscale(demo):
    deep = (np.arange(32 * 32, dtype=np.uint16).reshape(32, 32) * 64).astype(">u2")
    buffer = io.BytesIO()
    Image.frombytes("I;16B", (32, 32), deep.tobytes()).save(buffer, format="TIFF")
    assert demo.read(buffer.getvalue(), "deep.tif").shape == (1, 1, 32, 32)


def test_a_drawing_is_centred_and_sized_like_an_mnist_digit(demo):
    ink = np.zeros((280, 280, 4), np.uint8)
    ink[..., 3] = 255  # the pad's opaque black
    ink[10:150, 20:40, :3] = 255  # a "1" in the top-left corner
    digit = demo._drawing(png_bytes(ink, "RGBA"), "the drawing")[0]
    rows = np.flatnonzero(digit.max(1) > 32)
    assert rows[-1] - rows[0] + 1 == pytest.approx(round(32 * DIGIT_BOX), abs=1)  # the box of an MNIST digit
    mass = digit.astype(float)
    centre = [(mass.sum(1 - axis) @ np.arange(32)) / mass.sum() for axis in (0, 1)]
    assert centre == pytest.approx([15.5, 15.5], abs=0.6)
    x = demo.read(png_bytes(ink, "RGBA"), "the drawing", drawn=True)
    assert x.shape == (1, 1, 32, 32) and x.min() >= -1 and x.max() <= 1


def test_an_empty_or_huge_drawing_is_refused(demo):
    with pytest.raises(UserError, match="the drawing is empty"):
        centre_strokes(np.zeros((280, 280), np.uint8), 32)
    with pytest.raises(UserError, match="at most 1024 pixels on a side"):
        demo.read(png_bytes(np.zeros((10, 2000), np.uint8)), "the drawing", drawn=True)


def test_a_colour_model_takes_rgb_files_and_resizes_drawings(make_model):
    """A model of RGB images (the shapes dataset): its own results can be uploaded again."""
    colour = Demo(make_model().eval())
    assert (colour.resolution, colour.channels) == (32, 3)
    picture = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    x = colour.read(png_bytes(picture), "shape.png")
    assert np.array_equal(to_uint8(x[0]).permute(1, 2, 0).numpy(), picture)
    with pytest.raises(UserError, match="is 32x32 L; the model takes 32x32 RGB images"):
        colour.read(png_bytes(picture[..., 0]), "gray.png")
    drawn = colour.read(png_bytes(np.full((280, 200, 3), 90, np.uint8)), "the drawing", drawn=True)
    assert drawn.shape == (1, 3, 32, 32)
    result = colour.reconstruct(x, 2)
    with Image.open(io.BytesIO(result["inversion"])) as img:
        assert (img.mode, img.size) == ("RGB", (32, 32))
    assert colour.read(result["inversion"], "again.png").shape == (1, 3, 32, 32)


def test_interpolation_runs_from_one_reconstruction_to_the_other(demo, model, digits):
    a, b = digits[:1], digits[1:2]
    frames = demo.interpolate(a, b, 5)
    assert len(frames) == 5
    assert np.array_equal(pixels(frames[0]), to_uint8(model.reconstruct(a)[0, 0]).numpy())
    assert np.array_equal(pixels(frames[-1]), to_uint8(model.reconstruct(b)[0, 0]).numpy())
    middle = model.decode(0.5 * model.latent(a) + 0.5 * model.latent(b))
    assert np.abs(pixels(frames[2]).astype(int) - to_uint8(middle[0, 0]).numpy()).max() <= 1


def test_an_edit_adds_each_direction_times_its_strength_to_the_code(demo, model, digits):
    x = digits[:1]
    still = demo.edit(x, [0.0] * 10)
    assert still["edited"] == still["unedited"]
    assert np.array_equal(pixels(still["unedited"]), to_uint8(model.reconstruct(x)[0, 0]).numpy())
    strengths = [0.0] * 10
    strengths[7], strengths[3] = 2.5, -1.0
    edited = demo.edit(x, strengths)["edited"]
    z = model.latent(x) + 2.5 * demo.directions[7] - 1.0 * demo.directions[3]
    assert np.abs(pixels(edited).astype(int) - to_uint8(model.decode(z)[0, 0]).numpy()).max() <= 1
    assert edited != still["edited"]


def test_an_edit_from_the_inverted_code_reuses_the_inversion(demo, model, digits):
    x = digits[2:3]
    calls = []
    original = model.invert
    model.invert = lambda *args, **kwargs: calls.append(1) or original(*args, **kwargs)
    try:
        first = demo.edit(x, [0.0] * 10, steps=20)
        demo.edit(x, [1.0] + [0.0] * 9, steps=20)
    finally:
        model.invert = original
    assert len(calls) == 1
    assert np.array_equal(pixels(first["unedited"]), to_uint8(model.decode(model.invert(x, steps=20).z)[0, 0]).numpy())


@pytest.mark.parametrize(
    ("call", "says"),
    [
        (lambda d, x: d.sample(-1, 2), "seed must be a whole number from 0"),
        (lambda d, x: d.sample(0, 17), "n=17 is more than this demo allows (max_samples=16"),
        (lambda d, x: d.sample("1", 2), "seed must be a whole number"),
        (lambda d, x: d.reconstruct(x, 301), "steps=301 is more than this demo allows (max_steps=300"),
        (lambda d, x: d.reconstruct(x, 1.5), "steps must be a whole number from 0 to 300, got 1.5"),
        (lambda d, x: d.reconstruct(x, True), "steps must be a whole number"),
        (lambda d, x: d.interpolate(x, x, 1), "frames must be a whole number from 2 to 16, got 1"),
        (lambda d, x: d.interpolate(x, x, 40), "frames=40 is more than this demo allows (max_frames=16"),
        (lambda d, x: d.edit(x, [0.0] * 9), "strengths must be a list of 10 numbers from -5.0 to 5.0"),
        (lambda d, x: d.edit(x, [float("nan")] + [0.0] * 9), "strengths must be a list of 10"),
        (lambda d, x: d.edit(x, [6.0] + [0.0] * 9), "strengths must be a list of 10"),
        (lambda d, x: d.edit(x, [True] + [0.0] * 9), "strengths must be a list of 10"),
        (lambda d, x: d.edit(x, "0"), "strengths must be a list of 10"),
    ],
)
def test_a_value_out_of_bounds_is_one_line(demo, digits, call, says):
    with pytest.raises(UserError) as err:
        call(demo, digits[:1])
    assert says in str(err.value)


def test_without_directions_an_edit_says_how_to_give_some(model, digits):
    with pytest.raises(UserError, match="started without directions; start it with directions=FILE"):
        Demo(model).edit(digits[:1], [])


# ----------------------------------------------------------------- the server
@pytest.fixture(scope="module")
def server(demo):
    running = DemoServer(demo, "127.0.0.1", 0)
    thread = threading.Thread(target=running.serve_forever, daemon=True)
    thread.start()
    yield running
    running.shutdown()
    running.server_close()


def ask(server, method, path, body=None, headers=None, raw: bytes | None = None):
    connection = http.client.HTTPConnection(*server.server_address[:2], timeout=60)
    payload = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    sent = {"Content-Type": "application/json", **(headers or {})}
    connection.request(method, path, body=payload, headers=sent)
    response = connection.getresponse()
    data = response.read()
    connection.close()
    kind = response.getheader("Content-Type", "")
    return response.status, (json.loads(data) if kind == "application/json" else data), response


def data_url(data: bytes) -> str:
    return PNG_URL + base64.b64encode(data).decode()


def test_the_page_and_its_files_are_served_with_a_strict_policy(server):
    status, page, response = ask(server, "GET", "/")
    assert status == 200 and b"O-GAN demo" in page
    assert "script-src" not in response.getheader("Content-Security-Policy")  # default-src 'self': no inline code
    assert "default-src 'self'" in response.getheader("Content-Security-Policy")
    assert response.getheader("X-Content-Type-Options") == "nosniff"
    for name in ("/demo.js", "/demo.css"):
        assert ask(server, "GET", name)[0] == 200
    status, info, _ = ask(server, "GET", "/api/info")
    assert status == 200 and info["resolution"] == 32 and len(info["directions"]) == 10
    assert info["limits"]["max_steps"] == 300


def test_the_page_loads_nothing_from_elsewhere():
    """CPU-only and offline: no CDN, no web font, no address outside the demo's own."""
    for name in ("index.html", "demo.js", "demo.css"):
        text = (PAGE_DIR / name).read_text()
        assert "http:" not in text and "https:" not in text and "//" not in text.replace("// ", ""), name


def test_each_action_answers_images(server, digits):
    image = data_url(digit_png(digits[:1]))
    status, body, _ = ask(server, "POST", "/api/image", {"image": image, "name": "d.png"})
    assert status == 200 and body["image"] == image  # already the model's size and mode: unchanged
    status, body, _ = ask(server, "POST", "/api/sample", {"seed": 1, "n": 2})
    assert status == 200 and len(body["images"]) == 2
    status, body, _ = ask(server, "POST", "/api/reconstruct", {"image": image, "steps": 10})
    assert status == 200 and body["encoder"].startswith(PNG_URL) and body["psnr_inversion"] > 0
    other = data_url(digit_png(digits[1:2]))
    status, body, _ = ask(server, "POST", "/api/interpolate", {"a": image, "b": other, "frames": 3})
    assert status == 200 and len(body["frames"]) == 3
    status, body, _ = ask(server, "POST", "/api/edit", {"image": image, "strengths": [1.0] * 10})
    assert status == 200 and body["edited"] != body["unedited"]


def test_two_requests_at_once_are_both_answered(server, digits):
    images = [data_url(digit_png(digits[i : i + 1])) for i in range(2)]
    answers = [None, None]

    def post(i):
        answers[i] = ask(server, "POST", "/api/reconstruct", {"image": images[i], "steps": 30})[:2]

    threads = [threading.Thread(target=post, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [a[0] for a in answers] == [200, 200]
    assert answers[0][1]["encoder"] != answers[1][1]["encoder"]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "says"),
    [
        ("GET", "/secret", {}, 404, "/secret: no such page"),
        ("GET", "/../../etc/passwd", {}, 404, "no such page"),
        ("POST", "/api/nothing", {"body": {}}, 404, "no such action"),
        ("POST", "/api/sample", {"body": {}, "headers": {"Content-Type": "text/plain"}}, 415, "application/json"),
        ("POST", "/api/sample", {"body": {}, "headers": {"Host": "evil.example:80"}}, 403, "its own local address"),
        ("GET", "/", {"headers": {"Host": "rebound.example"}}, 403, "its own local address"),
        ("POST", "/api/sample", {"raw": b"{not json"}, 400, "the request is not JSON"),
        ("POST", "/api/sample", {"body": [1, 2]}, 400, "must be a JSON object"),
        ("POST", "/api/sample", {"raw": b"[" * 200_000}, 400, "too long a number or too deep"),
        ("POST", "/api/sample", {"body": {"seed": 1, "n": 100}}, 400, "max_samples=16"),
        ("POST", "/api/reconstruct", {"body": {"steps": 1}}, 400, "image must be an image as a data URL"),
        ("POST", "/api/reconstruct", {"body": {"image": "data:image/png;base64,@@@", "steps": 1}}, 400, "damaged"),
        ("PUT", "/api/sample", {"body": {}}, 405, "GET and POST only"),
        ("OPTIONS", "/api/sample", {}, 405, "GET and POST only"),
        ("POST", "/api/sample", {"raw": b'{"seed": "\xff"}'}, 400, "not JSON (not UTF-8 text)"),
        ("POST", "/api/sample", {"raw": b'{"seed": ' + b"9" * 5000 + b', "n": 1}'}, 400, "too long a number"),
        ("POST", "/api/edit", {"body": {"image": BLACK, "strengths": [10**400] + [0] * 9}}, 400, "strengths must be"),
        ("POST", "/api/sample", {"raw": b"{}", "headers": {"Content-Length": "\u00b2"}}, 411, "Content-Length"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_a_bad_request_gets_one_line_and_a_4xx(server, method, path, kwargs, status, says):
    got, body, _ = ask(server, method, path, **kwargs)
    assert got == status and says in body["error"] and "\n" not in body["error"]


def test_an_oversized_body_is_refused_before_it_is_read(server):
    """The declared length alone ends it: the server answers without waiting for a gigabyte."""
    with socket.create_connection(server.server_address[:2], timeout=10) as sock:
        head = (
            f"POST /api/image HTTP/1.1\r\nHost: 127.0.0.1:{server.server_address[1]}\r\nContent-Type: application/json\r\n"
            "Content-Length: 1000000000\r\n\r\n"
        )
        sock.sendall(head.encode())
        answer = b""
        while chunk := sock.recv(65536):  # the server closes the connection after its answer
            answer += chunk
        answer = answer.decode()
    assert answer.startswith("HTTP/1.1 413") and "this demo takes images up to 256 KB" in answer


def test_a_half_sent_body_gets_no_answer_and_leaves_no_trace(server, capsys):
    """A client that declares 100 bytes, sends 10 and closes: nothing is acted on, nothing printed."""
    with socket.create_connection(server.server_address[:2], timeout=10) as sock:
        head = f"POST /api/sample HTTP/1.1\r\nHost: 127.0.0.1:{server.server_address[1]}\r\n"
        sock.sendall((head + 'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"seed": 1}').encode())
        sock.shutdown(socket.SHUT_WR)
        assert sock.recv(1024) == b""
    assert ask(server, "GET", "/api/info")[0] == 200
    assert capsys.readouterr().err == ""


def test_a_tab_closed_during_an_inversion_leaves_no_trace(server, digits, capsys):
    body = json.dumps({"image": data_url(digit_png(digits[3:4])), "steps": 150}).encode()
    with socket.create_connection(server.server_address[:2], timeout=10) as sock:
        head = f"POST /api/reconstruct HTTP/1.1\r\nHost: 127.0.0.1:{server.server_address[1]}\r\n"
        sock.sendall((head + f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body)
        deadline = time.monotonic() + 10
        while not server.demo.busy and time.monotonic() < deadline:
            time.sleep(0.01)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with a reset
    with server.demo.turn():  # the inversion has finished and its answer met the closed socket
        pass
    assert ask(server, "GET", "/api/info")[0] == 200
    assert capsys.readouterr().err == ""


def test_too_many_waiting_requests_are_refused_with_503(server, monkeypatch):
    monkeypatch.setattr(server.demo, "_pending", MAX_WAITING + 1)
    status, body, _ = ask(server, "POST", "/api/sample", {"seed": 0, "n": 1})
    assert status == 503 and body["error"].startswith("the demo is busy with 5 earlier requests")


def test_a_mapped_loopback_address_is_loopback():
    assert is_loopback("::ffff:127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.0.2.1")


def test_a_bug_reaches_the_page_as_one_line_not_a_traceback(server, monkeypatch, capsys):
    monkeypatch.setattr(server.demo, "sample", lambda seed, n: 1 / 0)
    status, body, _ = ask(server, "POST", "/api/sample", {"seed": 0, "n": 1})
    assert status == 500 and body == {
        "error": "/api/sample failed (ZeroDivisionError); the terminal running ogan-demo shows why"
    }


# ----------------------------------------------------------------- the command
def test_the_command_serves_until_ctrl_c_and_a_second_one_on_its_port_is_refused(tmp_path):
    proc, url = start_demo(tmp_path, "port=0")
    try:
        port = int(url.rsplit(":", 1)[1].strip("/"))
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("GET", "/api/info")
        assert json.loads(connection.getresponse().read())["ckpt"] == "pretrained:digits"
        second = run_command_here(tmp_path, "-m", "ogan_pl.tools.demo", "ckpt=pretrained:digits", f"port={port}")
        assert second.returncode == 2
        assert (
            second.stderr.strip()
            == f"error: port={port} is in use (another ogan-demo?); pass port=N, or port=0 for any"
        )
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert err.strip().splitlines()[-1] == "stopped by Ctrl-C during demo; the demo is closed"


def test_ctrl_c_during_an_inversion_ends_the_demo_cleanly(tmp_path, digits):
    """The running action finishes, then the one line and exit code 130 (not an abort inside torch)."""
    proc, url = start_demo(tmp_path, "port=0")
    body = json.dumps({"image": data_url(digit_png(digits[:1])), "steps": 300}).encode()
    port = int(url.rsplit(":", 1)[1].strip("/"))
    answer = {}

    def reconstruct():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            connection.request("POST", "/api/reconstruct", body, {"Content-Type": "application/json"})
            answer["status"] = connection.getresponse().status
        except OSError as err:
            answer["error"] = err

    thread = threading.Thread(target=reconstruct)
    thread.start()
    time.sleep(1.0)  # the inversion is under way (300 steps take seconds)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    thread.join(60)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "stopped by Ctrl-C during demo; the demo is closed", err
    assert "terminate called" not in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["device=tpu"], "device='tpu' is not a device these commands run on"),
        (["device=meta"], "device='meta' is not a device these commands run on"),
        (["device=cuda:x"], "device='cuda:x' is not a device these commands run on"),
        (["port=70000"], "port=70000 must be a port from 0 (any free one) to 65535"),
        (["port=web"], "port='web' must be"),
        (["max_frames=1"], "max_frames=1 must be an integer >= 2"),
        (["max_steps=0"], "max_steps=0 must be an integer >= 1"),
        (["max_strength=-1"], "max_strength=-1"),
        (["host="], "host="),
        (["ckpt=nowhere.ckpt"], "nowhere.ckpt"),
        (["directions=nowhere.pt"], "directions=nowhere.pt not found"),
        (["host=192.0.2.1"], "cannot listen on host=192.0.2.1"),
    ],
)
def test_the_command_refuses_bad_settings_in_one_line(tmp_path, args, says):
    given = {a.split("=", 1)[0] for a in args}
    defaults = [f"{k}={v}" for k, v in (("ckpt", "pretrained:digits"), ("port", "0")) if k not in given]
    proc = run_command_here(tmp_path, "-m", "ogan_pl.tools.demo", *defaults, *args)
    assert proc.returncode == 2, proc.stderr
    line = proc.stderr.strip()
    assert line.startswith("error: ") and says in line and "\n" not in line, line


def test_a_model_without_shipped_directions_starts_without_edits(tmp_path, demo):
    """directions=null: the page hides its sliders (info lists none) and an edit says why."""
    proc, url = start_demo(tmp_path, "port=0", "directions=null")
    try:
        port = int(url.rsplit(":", 1)[1].strip("/"))
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("GET", "/api/info")
        assert json.loads(connection.getresponse().read())["directions"] == []
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
