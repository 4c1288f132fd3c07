"""``msqnet app``: the page's scoring on real videos, and the page itself driven in a real headless Chromium.

The browser tests start ``msqnet app`` as a user would (a separate process serving on a local
port), upload a shared video through the page's file input, and read what the page shows. They need
Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them where it can) and skip with
the reason otherwise. Screenshots go to the test's tmp folder and to ``$MSQNET_SCREENSHOT_DIR``.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

import msqnet
from msqnet.app import analyse_video
from msqnet.checkpoint import save_model
from msqnet.models import create_model

from .models.tiny import tiny_config

CLASSES = ["walking", "running", "eating"]
TYPED = ["riding a bicycle", "walking", "driving a taxi"]
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def open_ckpt(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = create_model(tiny_config("effnet", head="text", trainable_label_embeddings=False), CLASSES)
    return save_model(model, tmp_path_factory.mktemp("app") / "open")


@pytest.fixture(scope="module")
def model(open_ckpt):
    return msqnet.load_model(open_ckpt)


# --- what the page computes ------------------------------------------------------------------------


def test_a_long_video_gets_top_labels_a_timeline_and_a_window_table(model, shared_videos, tmp_path):
    video = str(shared_videos / "bikes.mp4")  # 10 s
    r = analyse_video(model, video, ", ".join(TYPED), window=4, stride=2, top_k=2, workdir=tmp_path)
    # No training-clip length recorded: the page's windows; the headline is their max, as msqnet predict gives it.
    timed = model.predict(video, labels=TYPED, window=4, stride=2)
    assert list(r.labels.items()) == timed.top(2)
    assert Path(r.timeline).is_file() and Path(r.timeline).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    top2 = [label for label, _ in timed.top(2)]
    assert r.table_headers == ["start (s)", "end (s)", *top2]
    expected = [[w.start, w.end, *(w.probabilities[TYPED.index(l)] for l in top2)] for w in timed.windows]
    assert np.allclose(r.table, expected, atol=1e-3) and len(r.table) == 4
    assert "bikes.mp4" in r.message and "4 windows of 4 s every 2 s" in r.message and "max over 4 windows" in r.message


def test_the_page_says_uncalibrated_and_offers_the_result_as_json_and_csv(model, shared_videos, tmp_path):
    r = analyse_video(model, str(shared_videos / "bikes.mp4"), window=4, stride=2, workdir=tmp_path)
    assert r.detected is None and r.headline == "uncalibrated: no decision" and r.events == []
    json_file, csv_file = map(Path, r.downloads)
    record = json.loads(json_file.read_text())
    assert record["source"] == "bikes.mp4" and record["calibration"] == "uncalibrated" and len(record["windows"]) == 4
    assert csv_file.read_text().startswith("source,start,end,label,probability") and str(shared_videos) not in \
        csv_file.read_text()


def test_a_calibrated_model_with_a_clip_length_shows_detections_and_events_of_its_own_windows(tmp_path, shared_videos):
    from msqnet.metrics.thresholds import DecisionThresholds

    torch.manual_seed(0)
    net = create_model(tiny_config("effnet"), CLASSES)
    net.clip_seconds = 2.0
    net.decision_thresholds = DecisionThresholds({c: 0.0 for c in CLASSES}, "val", 8, {c: 1.0 for c in CLASSES})
    calibrated = msqnet.load_model(save_model(net, tmp_path / "calibrated"))
    r = analyse_video(calibrated, str(shared_videos / "bikes.mp4"), window=4, stride=2, workdir=tmp_path)
    assert "5 windows of 2 s" in r.message and sorted(r.detected) == sorted(CLASSES)
    assert r.headline == ", ".join(label for label, _ in r.labels.items())  # detected, by score
    assert sorted(e.label for e in r.events) == sorted(CLASSES)  # threshold 0: on all along
    assert all((e.start, e.end) == (0.0, pytest.approx(10.0, abs=0.05)) for e in r.events)


def test_a_video_no_longer_than_the_window_gets_no_timeline(model, shared_videos):
    r = analyse_video(model, str(shared_videos / "carphone_pristine.mp4"), window=10, stride=5)
    assert r.timeline is None and r.table == [] and list(r.labels) == [l for l, _ in r.labels.items()]
    assert set(r.labels) == set(CLASSES)  # an empty label box means the trained classes


def test_an_unreadable_upload_gives_a_message_not_labels(model, tmp_path):
    bad = tmp_path / "holiday.mp4"
    bad.write_text("not a video")
    r = analyse_video(model, str(bad), window=4, stride=2)
    assert r.labels == {} and r.timeline is None
    assert r.message.startswith("Could not read holiday.mp4 as a video:") and str(tmp_path) not in r.message


def test_new_class_names_on_a_closed_set_model_give_a_message(tmp_path, shared_videos):
    closed = msqnet.load_model(save_model(create_model(tiny_config("effnet"), CLASSES), tmp_path / "closed"))
    r = analyse_video(closed, str(shared_videos / "bikes.mp4"), "riding a bicycle")
    assert r.labels == {} and r.message.startswith("Cannot score these labels: this model")


def test_a_repeated_class_name_gives_a_message(model, shared_videos):
    r = analyse_video(model, str(shared_videos / "bikes.mp4"), "walking, running, walking")
    assert r.message == "Cannot score these labels: labels: class 2 'walking' duplicates class 0; expected unique names"


def test_no_video_asks_for_one(model):
    assert analyse_video(model, None).message == "Upload a video or pick an example first."


# --- the page in a real browser --------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def browser():
    """Headless Debian Chromium through chromedriver (flags that keep it off this machine's closed network)."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is in the test extra")
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.is_file()]
    if missing:
        pytest.skip(f"no headless browser: {', '.join(missing)} missing (apt-get install chromium chromium-driver)")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    profile = tempfile.mkdtemp(prefix="msqnet-chromium-")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={profile}", "--window-size=1280,1500"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def _serve(ckpt: Path, tmp_path_factory, *extra: str):
    """``msqnet app`` serving ``ckpt`` on a free port (a generator: yields its URL, then stops it)."""
    port = _free_port()
    log = tmp_path_factory.mktemp("app_server") / "server.log"
    with open(log, "w") as out:
        server = subprocess.Popen(
            [sys.executable, "-c", "import sys; from msqnet.cli import main; sys.exit(main(sys.argv[1:]))",
             "app", "--checkpoint", str(ckpt), *extra, "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, cwd=REPO_ROOT,
            env={**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"})
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"msqnet app did not start (exit {server.poll()}):\n{log.read_text()}")
            time.sleep(0.5)
    yield url
    server.terminate()
    server.wait(timeout=30)


@pytest.fixture(scope="module")
def page_url(browser, open_ckpt, shared_videos, tmp_path_factory):
    """``msqnet app`` serving the tiny open-vocabulary model, with the shared videos as examples."""
    yield from _serve(open_ckpt, tmp_path_factory, "--examples", str(shared_videos))


@pytest.fixture(scope="module")
def calibrated_page_url(browser, long_action_video, tmp_path_factory):
    """``msqnet app`` serving a tiny model with 1-second training clips and a threshold for the label its
    score rises most for while the generated video's square moves (seconds 8-10)."""
    from msqnet.metrics.thresholds import DecisionThresholds

    torch.manual_seed(0)
    net = create_model(tiny_config("effnet"), CLASSES)
    net.clip_seconds = 1.0
    pred = net.predict(long_action_video, precision="fp32")  # 20 windows of 1 s
    probs = np.stack([w.probabilities for w in pred.windows])  # (20, C)
    still, moving = probs[:7].mean(axis=0), probs[8:10].min(axis=0)
    c = int(np.argmax(moving - still))
    net.decision_thresholds = DecisionThresholds({CLASSES[c]: float((still[c] + moving[c]) / 2)}, "synthetic", 0,
                                                 {CLASSES[c]: 1.0})
    yield from _serve(save_model(net, tmp_path_factory.mktemp("app") / "calibrated"), tmp_path_factory)


def _screenshot(browser, tmp_path: Path, name: str) -> Path:
    """Save what the page shows, in the test's tmp folder and in $MSQNET_SCREENSHOT_DIR when set."""
    path = tmp_path / name
    browser.save_screenshot(str(path))
    if os.environ.get("MSQNET_SCREENSHOT_DIR"):
        folder = Path(os.environ["MSQNET_SCREENSHOT_DIR"])
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, folder / name)
    return path


def _submit(browser, url: str, video: Path, labels: str | None = None) -> str:
    """Open the page, upload ``video``, type the labels, press the button; returns the status text."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(url)
    wait = WebDriverWait(browser, 60)
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#video input[type=file]")).send_keys(str(video))
    wait.until(lambda d: video.stem in d.find_element(By.ID, "video").text)  # the upload reached the server
    if labels is not None:
        browser.find_element(By.CSS_SELECTOR, "#labels textarea").send_keys(labels)
    browser.find_element(By.ID, "run").click()
    wait.until(lambda d: video.name in d.find_element(By.ID, "status").text)
    return browser.find_element(By.ID, "status").text


def test_the_page_shows_the_top_labels_of_an_uploaded_video(browser, page_url, model, shared_videos, tmp_path):
    from selenium.webdriver.common.by import By

    video = shared_videos / "bikes.mp4"
    status = _submit(browser, page_url, video, ", ".join(TYPED))
    assert status.startswith("bikes.mp4: 10.0 s, 250 frames")
    # The label panel: its title, the decision in large type (none: uncalibrated), then (label, percentage) pairs.
    lines = browser.find_element(By.ID, "top").text.splitlines()
    shown = list(zip(lines[2::2], lines[3::2]))
    expected = model.predict(video, labels=TYPED, window=4, stride=2).top(5)  # the page's windows
    assert lines[1] == "uncalibrated: no decision"
    assert shown == [(label, f"{round(p * 100)}%") for label, p in expected]
    table = browser.find_element(By.CSS_SELECTOR, "#windows [role=grid]")
    assert table.get_attribute("aria-rowcount") == "5"  # a header + 10 s in windows of 4 s every 2 s
    headers = [h.get_attribute("title") for h in browser.find_elements(By.CSS_SELECTOR, "#windows th[title]")]
    assert headers == ["start (s)", "end (s)", *(label for label, _ in expected)]
    assert browser.find_element(By.CSS_SELECTOR, "#timeline img").get_attribute("src")
    assert "Uncalibrated" in browser.find_element(By.ID, "detected").text
    names = [a.get_attribute("download") for a in browser.find_elements(By.CSS_SELECTOR, "#downloads a[download]")]
    assert names == ["bikes.json", "bikes.csv"]
    _screenshot(browser, tmp_path, "app_bikes.png")


def test_clicking_a_label_shows_where_the_model_looks_for_it(browser, page_url, shared_videos, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    _submit(browser, page_url, shared_videos / "bikes.mp4", ", ".join(TYPED))
    browser.find_element(By.CSS_SELECTOR, '#top [data-testid="walking-confidence-set"]').click()
    wait = WebDriverWait(browser, 120)
    image = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#overlay img"))
    assert image[0].get_attribute("src").split("?")[0].endswith("walking.png")
    assert "walking" in browser.find_element(By.ID, "overlay-note").text
    assert wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#overlay-video video"))
    _screenshot(browser, tmp_path, "app_overlay.png")


def test_the_page_shows_the_model_card_and_no_folder_path(browser, page_url, open_ckpt, tmp_path):
    from selenium.webdriver.common.by import By

    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(page_url)
    card = WebDriverWait(browser, 60).until(lambda d: d.find_element(By.ID, "card"))
    card.find_element(By.CSS_SELECTOR, "button").click()
    time.sleep(0.5)
    assert "## Decisions" not in card.text and "Decisions" in card.text and "Uncalibrated" in card.text
    assert str(open_ckpt.parent) not in browser.find_element(By.TAG_NAME, "body").text
    _screenshot(browser, tmp_path, "app_card.png")


def test_an_avi_example_is_scored_from_the_original_file(browser, page_url, shared_videos, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(page_url)
    wait = WebDriverWait(browser, 120)
    example = wait.until(lambda d: [b for b in d.find_elements(By.CSS_SELECTOR, "button") if b.text == "tree.avi"])
    example[0].click()
    time.sleep(2)
    browser.find_element(By.ID, "run").click()
    wait.until(lambda d: "tree.avi" in d.find_element(By.ID, "status").text)
    assert browser.find_element(By.ID, "status").text.startswith("tree.avi:")  # not a converted copy's name
    player = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#preview video"))
    assert player[0].get_attribute("src").endswith("tree.preview.mp4")  # browsers play no AVI: a converted preview
    _screenshot(browser, tmp_path, "app_avi.png")


def test_at_400_px_the_results_come_right_under_the_button(browser, page_url, shared_videos, tmp_path):
    from selenium.webdriver.common.by import By

    browser.set_window_size(400, 1500)
    try:
        _submit(browser, page_url, shared_videos / "bikes.mp4")
        button = browser.find_element(By.ID, "run").rect
        status = browser.find_element(By.ID, "status").rect
        examples = [e.rect for e in browser.find_elements(By.CSS_SELECTOR, ".gallery, [class*=examples]")]
        assert status["y"] > button["y"] and all(status["y"] < e["y"] for e in examples)
        assert browser.execute_script("return document.documentElement.scrollWidth") <= 400
        _screenshot(browser, tmp_path, "app_400px.png")
    finally:
        browser.set_window_size(1280, 1500)


def test_the_page_explains_an_unreadable_upload(browser, page_url, tmp_path):
    from selenium.webdriver.common.by import By

    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"this is not a video")
    status = _submit(browser, page_url, bad)
    assert status.startswith("Could not read broken.mp4 as a video:")
    assert "%" not in browser.find_element(By.ID, "top").text  # no labels shown for it
    _screenshot(browser, tmp_path, "app_bad_upload.png")


def test_an_event_time_on_the_page_seeks_the_player(browser, calibrated_page_url, long_action_video, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    _submit(browser, calibrated_page_url, long_action_video)
    wait = WebDriverWait(browser, 60)
    (button,) = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#events button[data-seek]"))
    start = float(button.get_attribute("data-seek"))
    assert 7.5 <= start <= 8.5  # the square moves in seconds 8-10
    wait.until(lambda d: d.execute_script("const v = document.querySelector('#preview video'); "
                                          "return v && v.readyState >= 1"))
    button.click()
    now = browser.execute_script("return document.querySelector('#preview video').currentTime")
    assert now == pytest.approx(start, abs=0.1)
    _screenshot(browser, tmp_path, "app_events.png")
