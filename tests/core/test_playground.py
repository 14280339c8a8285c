"""The web playground at ``/``, driven in headless Chromium (Debian chromium + chromedriver,
installed by ``make test``): type a review, submit, see the label."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import serving


def chrome():  # type: ignore[no-untyped-def]
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    assert browser and driver, "needs Debian chromium + chromium-driver (make test installs)"
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                 "--disable-gpu"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    driver = chrome()
    yield driver
    driver.quit()


def submit_review(browser, base: str, text: str) -> str:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(base + "/")
    wait = WebDriverWait(browser, 30)
    box = wait.until(ready.presence_of_element_located((By.ID, "input-reviews-review")))
    box.send_keys(text)
    browser.find_element(By.ID, "submit-reviews").click()
    result = wait.until(ready.presence_of_element_located(
        (By.CSS_SELECTOR, "#result-reviews .label, #result-reviews .error")))
    return result.text


def test_type_a_review_and_see_the_label(review_model: Path, browser) -> None:  # type: ignore[no-untyped-def]
    with serving([review_model]) as base:
        assert submit_review(browser, base, "the snack was really tasty and fresh") == "pos"
        assert submit_review(browser, base, "the box was broken and the taste awful") == "neg"
        assert "reviews" in browser.find_element("id", "model-reviews").text


def test_the_page_asks_for_the_api_key(review_model: Path, browser,  # type: ignore[no-untyped-def]
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    monkeypatch.setenv("PLAYGROUND_KEY", "s3cret")
    with serving([review_model], "--api-key-env", "PLAYGROUND_KEY") as base:
        browser.get(base + "/")
        wait = WebDriverWait(browser, 30)
        wait.until(ready.text_to_be_present_in_element((By.ID, "models"), "401"))
        assert "missing or wrong API key" in browser.find_element(By.ID, "models").text
        browser.find_element(By.ID, "api-key").send_keys("s3cret", Keys.TAB)
        box = wait.until(ready.presence_of_element_located((By.ID, "input-reviews-review")))
        box.send_keys("lovely and tasty")
        browser.find_element(By.ID, "submit-reviews").click()
        label = wait.until(ready.presence_of_element_located(
            (By.CSS_SELECTOR, "#result-reviews .label")))
        assert label.text == "pos"
