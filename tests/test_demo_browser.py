"""The demo page in a real headless Chromium, driven by Selenium as a person would use it: the page
loads, a sample appears, an uploaded held-out digit comes back reconstructed, a drawing is taken,
interpolation and edits show, and bad uploads show their one-line message on the page.

`make test` installs Chromium and chromedriver when missing (scripts/install_browser.sh);
OGAN_SKIP_BROWSER=1 skips these tests on a machine where that cannot be done.
OGAN_DEMO_SCREENSHOTS=DIR saves the screenshots of docs/demo.md there (`make demo-screenshots`)."""

import os
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ogan_pl.data import DigitsDataModule
from ogan_pl.data.convert import to_uint8
from tests.conftest import start_demo

pytestmark = pytest.mark.browser
WAIT_S = 60


def browser_files() -> tuple[str, str]:
    if os.environ.get("OGAN_SKIP_BROWSER") == "1":
        pytest.skip("OGAN_SKIP_BROWSER=1")
    chromium = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        pytest.fail(
            "the demo's browser tests need Chromium and chromedriver: `make test` installs them "
            "(scripts/install_browser.sh); OGAN_SKIP_BROWSER=1 skips these tests"
        )
    return chromium, driver


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """Chromium (headless) on a running `ogan-demo ckpt=pretrained:digits port=0`."""
    chromium, chromedriver = browser_files()
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1100,1800"):
        options.add_argument(flag)
    proc, url = start_demo(tmp_path_factory.mktemp("demo"), "port=0")
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=chromedriver))
    try:
        driver.get(url)
        wait(driver, lambda d: d.find_element("tag name", "body").get_attribute("data-ready") == "true")
        yield driver
    finally:
        driver.quit()
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A held-out digit as the model takes it, an RGB photo-sized image and a text file named .png."""
    folder = tmp_path_factory.mktemp("uploads")
    digit = DigitsDataModule(batch_size=8).holdout_batch(1)["image"][0, 0]
    Image.fromarray(to_uint8(digit).numpy(), "L").save(folder / "digit.png")
    Image.fromarray(np.full((64, 64, 3), 200, np.uint8)).save(folder / "photo.png")
    (folder / "notes.png").write_text("not an image")
    return folder


def wait(driver, condition):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT_S).until(condition)


def by_id(driver, name):
    return driver.find_element("id", name)


def message(driver) -> str:
    box = by_id(driver, "message")
    return box.text if box.is_displayed() else ""


def loaded(driver, selector: str) -> int:
    """How many images match `selector`, once every one has its pixels (a decoded 32 px PNG); asked in
    one script, so that images a new answer replaces meanwhile are never half-read."""
    script = (
        "const imgs = [...document.querySelectorAll(arguments[0])];"
        "return imgs.length && imgs.every((i) => i.complete && i.naturalWidth === 32) ? imgs.length : 0;"
    )
    return wait(driver, lambda d: d.execute_script(script, selector))


def upload(driver, path: Path) -> None:
    by_id(driver, "upload").send_keys(str(path))


def test_the_page_loads_and_names_the_model(page):
    assert by_id(page, "model-info").text.startswith("pretrained:digits: 32x32 grayscale, 32-d codes")
    assert "32x32 grayscale images up to 256 KB" in by_id(page, "upload-rule").text
    assert len(page.find_elements("css selector", "#sliders input[type=range]")) == 10
    assert by_id(page, "frames-value").text == by_id(page, "frames").get_attribute("value") == "8"
    assert by_id(page, "steps").get_attribute("max") == "300" and by_id(page, "steps-value").text == "100"
    assert message(page) == ""


def test_a_sample_appears(page):
    by_id(page, "seed").clear()
    by_id(page, "seed").send_keys("7")
    by_id(page, "sample-btn").click()
    assert loaded(page, "#samples img") == 8
    assert by_id(page, "slot-a").find_element("tag name", "img").is_displayed()


def test_an_uploaded_digit_comes_back_reconstructed(page, files):
    before = by_id(page, "slot-a").find_element("tag name", "img").get_attribute("src")
    upload(page, files / "digit.png")
    wait(page, lambda d: by_id(d, "slot-a").find_element("tag name", "img").get_attribute("src") != before)
    by_id(page, "reconstruct-btn").click()
    wait(page, lambda d: "steps" in by_id(d, "psnr-inversion").text)
    loaded(page, "#reconstruction img")
    encoder = float(by_id(page, "psnr-encoder").text.split()[1])
    inversion = float(by_id(page, "psnr-inversion").text.split()[1])
    assert 12 < encoder < inversion, (encoder, inversion)  # a faithful encoder; inversion closer still
    assert message(page) == ""


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("photo.png", "photo.png is 64x64 RGB; the model takes 32x32 grayscale images"),
        ("notes.png", "notes.png cannot be decoded as an image"),
    ],
)
def test_a_bad_upload_shows_its_message_on_the_page(page, files, name, says):
    upload(page, files / name)
    text = wait(page, lambda d: message(d))
    assert text.startswith(says) and "Traceback" not in page.page_source
    if name == "photo.png" and os.environ.get("OGAN_DEMO_SCREENSHOTS"):
        size = page.get_window_size()
        page.set_window_size(1000, 560)
        page.execute_script("document.getElementById('images-section').scrollIntoView()")
        page.save_screenshot(str(Path(os.environ["OGAN_DEMO_SCREENSHOTS"]) / "demo-refused.png"))
        page.set_window_size(size["width"], size["height"])
    by_id(page, "sample-btn").click()  # the next action clears the message
    wait(page, lambda d: message(d) == "")


def test_a_drawing_becomes_image_b_and_interpolation_reaches_it(page):
    from selenium.webdriver import ActionChains
    from selenium.webdriver.support.ui import Select

    Select(by_id(page, "target")).select_by_value("b")
    pad = by_id(page, "pad")
    strokes = ActionChains(page).move_to_element_with_offset(pad, -45, -60).click_and_hold()
    strokes.move_by_offset(90, 0).move_by_offset(-50, 130).release().perform()  # a 7
    before = by_id(page, "slot-b").find_element("tag name", "img").get_attribute("src")
    by_id(page, "use-drawing-btn").click()
    wait(page, lambda d: by_id(d, "slot-b").find_element("tag name", "img").get_attribute("src") != before)
    by_id(page, "interpolate-btn").click()
    assert loaded(page, "#interpolation img") == 8
    Select(by_id(page, "target")).select_by_value("a")


def test_an_edit_slider_changes_image_a(page):
    from selenium.webdriver.common.keys import Keys

    by_id(page, "sample-btn").click()  # image A: a sample, if nothing is there yet
    loaded(page, "#samples img")
    by_id(page, "strength-7").send_keys(Keys.END)  # to +max_strength: a change event
    wait(page, lambda d: by_id(d, "edit-result").is_displayed())
    edited, unedited = (by_id(page, f"edit-{n}").get_attribute("src") for n in ("edited", "unedited"))
    assert edited != unedited and message(page) == ""
    by_id(page, "reconstruct-btn").click()
    loaded(page, "#reconstruction img")
    if os.environ.get("OGAN_DEMO_SCREENSHOTS"):
        body = page.find_element("tag name", "body")
        body.screenshot(str(Path(os.environ["OGAN_DEMO_SCREENSHOTS"]) / "demo.png"))
