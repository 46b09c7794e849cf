"""The web page of ``python -m speechmodel.serve`` in a real browser:
headless Chromium (Debian's chromium and chromium-driver) driven with
Selenium uploads files and records through Chromium's fake microphone fed
from a WAV file, and sees the results."""

import os
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.paths import ravdess_files
from tests.serving import running_server, tiny_model

CLASSES = ["neutral", "happy", "sad"]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

# slow: drives the web page in headless Chromium.
pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install chromium chromium-driver)"
)]
# Selenium Manager must never run (no network): the driver is given.
os.environ.setdefault("SE_OFFLINE", "true")
os.environ.setdefault("SE_AVOID_STATS", "true")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    model = tiny_model(tmp_path_factory.mktemp("model") / "tiny.keras", CLASSES)
    with running_server(model, tmp_path_factory.mktemp("serve")) as (url, process, tmp):
        yield url


@pytest.fixture(scope="module")
def microphone_wav(tmp_path_factory):
    """What the fake microphone plays (looped): real speech, 16-bit WAV."""
    from speechmodel.audio import load_audio

    y = np.concatenate([load_audio(f) for f in ravdess_files("Actor_15/*.wav")[:2]])
    path = tmp_path_factory.mktemp("mic") / "mic.wav"
    sf.write(path, y, 16000, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def browser(microphone_wav, tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
        "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={microphone_wav}", "--autoplay-policy=no-user-gesture-required",
        "--window-size=1200,1400",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver, condition, timeout=90):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition(driver)
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out; page status: {driver.find_element('id', 'status').text!r}")


def open_page(driver, url):
    driver.get(url + "/")
    wait_for(driver, lambda d: "3 emotions" in d.find_element("id", "model").text)


def finished(driver):
    state = driver.find_element("tag name", "body").get_attribute("data-state")
    assert state != "error", driver.find_element("id", "status").text
    return state == "done"


def read_result(driver):
    bars = driver.find_elements("css selector", "#probabilities .bar")
    return {
        "emotion": driver.find_element("id", "emotion").text,
        "summary": driver.find_element("id", "summary").text,
        "bars": {b.get_attribute("data-label"): float(b.get_attribute("data-probability")) for b in bars},
        "entries": int(driver.find_element("id", "timeline").get_attribute("data-entries")),
        "rows": len(driver.find_elements("css selector", "#segments tr")),
    }


def test_upload_a_clip_and_a_long_recording(server, browser, tmp_path):
    open_page(browser, server)
    clip = ravdess_files("Actor_15/*.wav")[3]
    browser.find_element("id", "file").send_keys(clip)
    browser.find_element("id", "upload").click()
    wait_for(browser, finished)
    result = read_result(browser)
    assert result["emotion"] in CLASSES
    assert set(result["bars"]) == set(CLASSES) and sum(result["bars"].values()) == pytest.approx(1, abs=1e-3)
    assert max(result["bars"], key=result["bars"].get) == result["emotion"]
    assert result["summary"].startswith(Path(clip).name) and result["entries"] == 1

    # A long recording cut into utterances: the timeline lists them.
    from speechmodel.audio import load_audio

    parts = []
    for f in ravdess_files("Actor_15/*.wav")[4:10]:
        parts += [load_audio(f), np.zeros(16000, np.float32)]
    long = tmp_path / "meeting.wav"
    sf.write(long, np.concatenate(parts), 16000, subtype="PCM_16")
    browser.find_element("css selector", "#segment option[value=vad]").click()
    browser.find_element("id", "file").send_keys(str(long))
    browser.find_element("id", "upload").click()
    wait_for(browser, lambda d: finished(d) and "meeting.wav" in d.find_element("id", "summary").text)
    result = read_result(browser)
    assert "utterances, weighted by speech" in result["summary"]
    assert result["entries"] >= 6 and result["rows"] == result["entries"] + 1
    browser.save_screenshot(str(tmp_path / "page.png"))
    assert (tmp_path / "page.png").read_bytes()[:4] == b"\x89PNG"

    # A file that is not audio: the error, and no longer the meeting's result under it.
    notes = tmp_path / "notes.wav"
    notes.write_text("not audio at all\n" * 50)
    browser.find_element("id", "file").send_keys(str(notes))
    browser.find_element("id", "upload").click()
    wait_for(browser, lambda d: d.find_element("tag name", "body").get_attribute("data-state") == "error")
    assert "notes.wav" in browser.find_element("id", "status").text
    assert not browser.find_element("id", "result").is_displayed()


def test_record_from_the_microphone(server, browser):
    open_page(browser, server)
    # Utterances: the speech the fake microphone plays must come through.
    browser.find_element("css selector", "#segment option[value=vad]").click()
    browser.find_element("id", "record").click()
    wait_for(browser, lambda d: d.find_element("tag name", "body").get_attribute("data-state") == "recording")
    # Record until 4 s of audio have arrived (the elapsed counter).
    wait_for(browser, lambda d: float((d.find_element("id", "elapsed").text or "0 s").split()[0]) >= 4.0)
    browser.find_element("id", "stop").click()
    wait_for(browser, finished)
    result = read_result(browser)
    assert result["emotion"] in CLASSES
    assert sum(result["bars"].values()) == pytest.approx(1, abs=1e-3)
    match = re.match(r"recording\.wav, ([0-9.]+) s · ([0-9]+) utterances", result["summary"])
    assert match and 3.9 <= float(match.group(1)) < 12.0, result["summary"]
    assert int(match.group(2)) >= 1 and result["rows"] == int(match.group(2)) + 1
