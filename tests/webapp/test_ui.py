"""The Dash webapp in headless Chromium against a real gateway, broker and services: upload → progress →
charts and comparison tables; a broken file → a clear error; the bundled example; re-forecast; layouts at
1280×800 and on a phone-sized screen (screenshots in test-artifacts/)."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By

from tests.plugins.frames import make_config, synthetic_frame
from tests.plugins.waiting import wait_until
from tests.plugins.webapp_pages import texts
from timex_stream.runtime.ports import free_port
from timex_stream.runtime.results import series_entry
from timex_stream.tools.stack import Stack, _http_ready
from webapp.app import create_app

TIMEOUT = 90


def upload(dash_duo: Any, component_id: str, path: Path) -> None:
    """dcc.Upload hides an <input type=file>: give it the path as a user's file pick would."""
    dash_duo.find_element(f"#{component_id} input[type=file]").send_keys(str(path))


OVERFLOW_JS = "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
# What sticks out sideways (the outermost elements past the viewport's right edge: tag#id.class and width; a wide
# table in its scrolling card is listed too), so that a page that does not fit says where.
WIDEST_JS = """
const limit = document.documentElement.clientWidth, out = [];
for (const el of document.body.querySelectorAll('*')) {
  const box = el.getBoundingClientRect();
  if (box.right > limit + 1 && !(el.parentElement && el.parentElement.getBoundingClientRect().right > limit + 1)) {
    out.push(`${el.tagName.toLowerCase()}#${el.id}.${String(el.className.baseVal ?? el.className).trim()
      .replace(/\\s+/g, '.')} ${Math.round(box.width)}px`);
  }
  if (out.length >= 5) break;
}
return out.join(', ');
"""


def full_page_screenshot(dash_duo: Any, path: Path, width: int) -> None:
    """Resize to `width`, wait until nothing sticks out sideways (plotly redraws its charts), grow to the
    page's height and save a screenshot; fails if the page does not fit the width."""
    driver = dash_duo.driver
    driver.set_window_size(width, 800)
    # 30 s: on a loaded CI machine plotly's redraw after the resize took over 10 s once (overflow 6,488 px meanwhile)
    try:
        wait_until(lambda: driver.execute_script(OVERFLOW_JS) <= 0, timeout=30, what=f"page fits {width}px")
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}: overflow {driver.execute_script(OVERFLOW_JS)}px, sticking out: "
                           f"{driver.execute_script(WIDEST_JS)}") from None
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, max(800, height))
    driver.save_screenshot(str(path))


def test_upload_config_and_csv_then_watch_the_forecast(dash_duo: Any, gateway_url: str, tmp_path: Path,
                                                       artifacts: Path) -> None:
    config = make_config("", ["seasonal", "trend"], models="naive,seasonal_naive")
    config["activity_title"] = "UI upload"
    del config["input_parameters"]["source_data_url"]  # the CSV comes with the upload
    (tmp_path / "shop.json").write_text(json.dumps(config))
    synthetic_frame().to_csv(tmp_path / "shop.csv", index=False)

    dash_duo.driver.set_window_size(1280, 800)
    dash_duo.start_server(create_app(gateway_url))
    assert dash_duo.driver.title == "TIMEX Stream"
    assert dash_duo.driver.find_element(By.CSS_SELECTOR, "link[rel=icon]").get_attribute("href").endswith(
        "/assets/favicon.svg")

    upload(dash_duo, "upload-config", tmp_path / "shop.json")  # no data yet: the gateway says what is missing
    dash_duo.wait_for_contains_text("#staged-message", "Upload the CSV too", timeout=20)
    assert "input_parameters.source_data_url" in dash_duo.find_element("#staged-message").text
    upload(dash_duo, "upload-csv", tmp_path / "shop.csv")
    dash_duo.wait_for_contains_text("#staged-message", "Ready: “UI upload” with data shop.csv", timeout=20)
    dash_duo.find_element("#submit").click()
    dash_duo.wait_for_contains_text("#action-message", "Submitted as", timeout=20)
    rid = dash_duo.find_element("#action-message").text.split("Submitted as ")[1].rstrip(".")
    wait_until(lambda: dash_duo.driver.current_url.endswith(f"/requests/{rid}"), 20, "the request's own address")

    dash_duo.wait_for_contains_text("#progress", "units done", timeout=30)
    dash_duo.wait_for_contains_text("#status", "Done", timeout=TIMEOUT)
    wait_until(lambda: texts(dash_duo, ".series-name") == ["seasonal", "trend"],
               timeout=TIMEOUT, what="both series rendered")
    assert "re-forecast" not in dash_duo.find_element("#status").text and rid in dash_duo.find_element("#status").text
    progress = dash_duo.find_element("#progress").text
    assert "seasonal" in progress and "trend" in progress
    wait_until(lambda: len(dash_duo.driver.find_elements(By.CSS_SELECTOR, ".forecast-chart .main-svg")) >= 2,
               timeout=TIMEOUT, what="two plotly charts drawn")
    for card in dash_duo.driver.find_elements(By.CSS_SELECTOR, ".series-card"):
        legend = card.find_element(By.CSS_SELECTOR, ".forecast-chart .legend").text
        assert "history" in legend and "forecast (" in legend, legend
        rows = card.find_elements(By.CSS_SELECTOR, "table.comparison tbody tr")
        models = {r.find_element(By.CSS_SELECTOR, "td").text.lstrip("★ ") for r in rows}
        assert models == {"naive", "seasonal_naive"}
        best = card.find_elements(By.CSS_SELECTOR, "table.comparison tr.best")
        assert len(best) == 1 and best[0].text.startswith("★ ")
    # The seasonal series is won by the seasonal model, and its row is the highlighted one.
    seasonal = dash_duo.driver.find_elements(By.CSS_SELECTOR, ".series-card")[0]
    assert seasonal.find_element(By.CSS_SELECTOR, "tr.best td").text == "★ seasonal_naive"
    links = [a.get_attribute("href") for a in dash_duo.driver.find_elements(By.CSS_SELECTOR, ".downloads a")]
    assert links[0].endswith(f"/download/{rid}.csv")
    csv_text = dash_duo.driver.execute_script(f"return fetch('{links[0]}').then(r => r.text())")
    assert csv_text.startswith("series,timestamp,kind,value") and "seasonal" in csv_text

    dash_duo.driver.save_screenshot(str(artifacts / "webapp-1280x800.png"))
    full_page_screenshot(dash_duo, artifacts / "webapp-1280-full.png", 1280)
    full_page_screenshot(dash_duo, artifacts / "webapp-narrow-390.png", 390)

    # Re-forecast from the list of past requests: a new request, linked to the old one.
    dash_duo.driver.set_window_size(1280, 800)
    button = wait_until(lambda: [b for b in dash_duo.driver.find_elements(By.CSS_SELECTOR, ".history-row")
                                 if rid in b.text], timeout=TIMEOUT, what="request in the history list")[0]
    button.find_element(By.XPATH, ".//button[text()='Re-forecast']").click()
    dash_duo.wait_for_contains_text("#status", f"re-forecast of {rid}", timeout=30)
    dash_duo.wait_for_contains_text("#status", "Done", timeout=TIMEOUT)
    wait_until(lambda: texts(dash_duo, ".series-name") == ["seasonal", "trend"],
               timeout=TIMEOUT, what="re-forecast rendered")
    assert dash_duo.get_logs() == []  # no errors in the browser console


def test_broken_files_get_a_clear_message(dash_duo: Any, gateway_url: str, tmp_path: Path, artifacts: Path) -> None:
    dash_duo.driver.set_window_size(1280, 800)
    dash_duo.start_server(create_app(gateway_url))
    (tmp_path / "broken.json").write_text("this is { not JSON")
    upload(dash_duo, "upload-config", tmp_path / "broken.json")
    dash_duo.wait_for_contains_text("#staged-message", "broken.json is not a valid TIMEX config", timeout=20)
    assert "not valid JSON" in dash_duo.find_element("#staged-message").text
    assert dash_duo.find_element("#submit").get_attribute("disabled")
    dash_duo.driver.save_screenshot(str(artifacts / "webapp-broken-file.png"))

    typo = make_config("http://127.0.0.1/x.csv", ["a"], models="naive,prophett")
    (tmp_path / "typo.json").write_text(json.dumps(typo))
    upload(dash_duo, "upload-config", tmp_path / "typo.json")
    dash_duo.wait_for_contains_text("#staged-message", "typo.json is not a valid TIMEX config", timeout=20)
    message = dash_duo.find_element("#staged-message").text
    assert "prophett" in message and "model_parameters.models" in message
    assert dash_duo.find_element("#submit").get_attribute("disabled")


def test_bundled_example_runs(dash_duo: Any, gateway_url: str) -> None:
    dash_duo.driver.set_window_size(1280, 800)
    dash_duo.start_server(create_app(gateway_url))
    dash_duo.find_element("#use-example").click()
    dash_duo.wait_for_contains_text("#staged-message", "Ready: “Monthly shop: sales and visitors”", timeout=20)
    dash_duo.find_element("#submit").click()
    dash_duo.wait_for_contains_text("#status", "Done", timeout=TIMEOUT)
    wait_until(lambda: texts(dash_duo, ".series-name") == ["sales", "visitors"],
               timeout=TIMEOUT, what="example series rendered")
    assert dash_duo.driver.find_elements(By.CSS_SELECTOR, ".failures") == []


def test_webapp_service_runs_under_gunicorn(stack: Stack, gateway_url: str) -> None:
    """What `make up` runs: gunicorn workers serving the app, /health for readiness, SIGTERM stops it."""
    port = free_port()
    proc = stack.launch("webapp", "webapp-gunicorn", TIMEX_WEBAPP_PORT=str(port), TIMEX_GATEWAY_URL=gateway_url)
    try:
        wait_until(lambda: proc.poll() is not None or _http_ready(f"http://127.0.0.1:{port}/health"), timeout=60,
                   what="webapp healthy")
        assert proc.poll() is None, f"webapp exited with {proc.returncode}"
        page = requests.get(f"http://127.0.0.1:{port}/", timeout=10)
        assert page.headers["Server"].startswith("gunicorn") and "<title>TIMEX Stream</title>" in page.text
        assert requests.get(f"http://127.0.0.1:{port}/health", timeout=10).json()["gateway"] == gateway_url
        assert requests.get(f"http://127.0.0.1:{port}/assets/favicon.svg", timeout=10).status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0


CHART_KINDS = ("line", "histogram", "autocorrelation", "box-plot", "aggregate-box-plot", "xcorr", "xcorr-graph",
               "forecast", "multivariate", "windows", "historical")


def drawn_charts(card: Any) -> list[str]:
    """The kinds of chart plotly has drawn in a series card (svgs inside a dcc.Graph), one per chart."""
    return [kind for kind in CHART_KINDS for graph in card.find_elements(By.CSS_SELECTOR, f".chart-{kind}")
            if graph.find_elements(By.CSS_SELECTOR, ".main-svg")]


def cards_where(dash_duo: Any, check: Callable[[Any], bool]) -> list[Any]:
    """The series cards passing `check`; none while the panel is being redrawn (a later answer re-renders it)."""
    try:
        return [c for c in dash_duo.driver.find_elements(By.CSS_SELECTOR, ".series-card") if check(c)]
    except StaleElementReferenceException:
        return []


def test_every_timex_chart_for_a_two_series_config_with_xcorr_and_historical_predictions(
        dash_duo: Any, gateway_url: str, tmp_path: Path, artifacts: Path) -> None:
    """The real stack answers with cross-correlations and historical predictions for both series, and the
    webapp draws every chart of the answer in the config's language (Italian here). (The multivariate chart
    needs a model that takes regressors, too slow for here: tests/webapp/test_charts.py draws it.)"""
    frame = synthetic_frame()
    frame["follower"] = frame["seasonal"].shift(3).bfill()  # the seasonal series three steps later
    config = make_config("", ["seasonal", "follower"], models="naive,seasonal_naive")
    del config["input_parameters"]["source_data_url"]
    config.update(activity_title="UI charts", visualization_parameters={"language": "it", "xcorr_graph_threshold": 0.5},
                  xcorr_parameters={"xcorr_max_lags": 6, "xcorr_extra_regressor_threshold": 0.5,
                                    "xcorr_mode": "pearson,kendall", "xcorr_mode_target": "pearson"},
                  historical_prediction_parameters={"initial_index": "2005-01-01", "save_path": "kept.pkl"})
    (tmp_path / "charts.json").write_text(json.dumps(config))
    frame.to_csv(tmp_path / "charts.csv", index=False)

    dash_duo.driver.set_window_size(1280, 800)
    dash_duo.start_server(create_app(gateway_url))
    upload(dash_duo, "upload-config", tmp_path / "charts.json")
    upload(dash_duo, "upload-csv", tmp_path / "charts.csv")
    dash_duo.wait_for_contains_text("#staged-message", "Ready: “UI charts” with data charts.csv", timeout=20)
    dash_duo.find_element("#submit").click()
    dash_duo.wait_for_contains_text("#action-message", "Submitted as", timeout=20)
    rid = dash_duo.find_element("#action-message").text.split("Submitted as ")[1].rstrip(".")
    dash_duo.wait_for_contains_text("#status", "Done", timeout=TIMEOUT)
    wait_until(lambda: texts(dash_duo, ".series-name") == ["follower", "seasonal"],
               timeout=TIMEOUT, what="both series rendered")
    answer = requests.get(f"{gateway_url}/api/requests/{rid}", timeout=10).json()
    assert answer["visualization"] == {"language": "it", "xcorr_graph_threshold": 0.5, "box_plot_frequency": "1W",
                                       "aggregate_box_plot_frequency": "weekday"}  # TIMEX's defaults
    entries = {name: series_entry(best) for name, best in answer["results"].items()}
    assert all(e.get("xcorr") and e.get("historical_predictions") for e in entries.values()), entries.keys()
    expected = {name: {"line", "histogram", "autocorrelation", "box-plot", "aggregate-box-plot", "forecast", "windows"}
                | ({"xcorr", "xcorr-graph"} if e.get("xcorr") else set())
                | ({"multivariate"} if e.get("multivariate") else set())
                | ({"historical"} if e.get("historical_predictions") else set()) for name, e in entries.items()}
    cards = wait_until(lambda: len(found := cards_where(dash_duo, lambda c: set(drawn_charts(c)) >= expected[
        c.find_element(By.CSS_SELECTOR, "h3").text])) == 2 and found,
        timeout=TIMEOUT, what="every chart of the answer drawn")
    for card in cards:
        assert "Visualizzazione dei dati" in card.text and "Risultati dell'allenamento del modello" in card.text
        forecast = card.find_element(By.CSS_SELECTOR, ".chart-forecast")
        assert "storico" in forecast.find_element(By.CSS_SELECTOR, ".legend").text
        assert "Previsione con intervalli" in forecast.text and "Istogramma" in card.text
    dash_duo.driver.save_screenshot(str(artifacts / "webapp-charts-stack.png"))
    assert dash_duo.get_logs() == []
