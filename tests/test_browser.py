"""The invoice page in a real browser: Debian's chromium driven through chromium-driver.

The gateway, the three simulators and a JWKS endpoint run on loopback in the test's event
loop; Selenium (blocking) runs in a worker thread so the loop keeps serving. Screenshots
go to build/test-output/browser/.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from gateway.app import create_app
from tests.jwt_support import JwksServer, issuer, mint, rsa_key
from tests.support import (
    NOW,
    fintera_connection,
    hubsoft_connection,
    make_settings,
    xarios_connection,
)

DOC = "12345678909"
KEY = rsa_key("browser")
SHOTS = Path(__file__).resolve().parent.parent / "build" / "test-output" / "browser"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
WAIT_S = 30


def browser() -> webdriver.Chrome:
    """Headless chromium at a phone-ish and a desktop-ish width alike."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1200,1400",
    ):
        options.add_argument(arg)
    return webdriver.Chrome(options=options, service=Service(DRIVER))


def providers_on_page(driver) -> set[str]:
    """The providers of the invoices shown."""
    return {
        li.get_attribute("data-provider")
        for li in driver.find_elements(By.CSS_SELECTOR, "#invoices li.invoice")
    }


def wait_for_page(driver, number: int) -> None:
    """Until the status line says page `number` is shown."""
    WebDriverWait(driver, WAIT_S).until(
        ec.text_to_be_present_in_element((By.ID, "status"), f"Page {number}:")
    )


def sign_in_and_walk(
    base: str, token: str, expired: str, fail_fintera
) -> dict[str, object]:
    """The whole user journey; returns what it saw."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    seen: dict[str, object] = {}
    driver = browser()
    try:
        driver.get(f"{base}/app/")
        # An expired token: the page says so and stays on the sign-in form.
        driver.find_element(By.ID, "credential").send_keys(expired)
        driver.find_element(By.ID, "sign-in-button").click()
        refused = WebDriverWait(driver, WAIT_S).until(
            ec.visibility_of_element_located((By.CSS_SELECTOR, ".sign-in-error"))
        )
        seen["refused"] = refused.text
        driver.find_element(By.ID, "credential").send_keys(token)
        driver.find_element(By.ID, "sign-in-button").click()
        wait_for_page(driver, 1)
        driver.save_screenshot(str(SHOTS / "1-signed-in.png"))
        providers, pages = providers_on_page(driver), 1
        pdf_result = None
        while True:
            if pdf_result is None:
                pdf_result = try_pdf(driver)
            nxt = driver.find_element(By.ID, "next")
            if not nxt.is_enabled():
                break
            nxt.click()
            pages += 1
            wait_for_page(driver, pages)
            providers |= providers_on_page(driver)
        driver.save_screenshot(str(SHOTS / "2-last-page.png"))
        seen["providers"], seen["pages"], seen["pdf"] = providers, pages, pdf_result
        seen["summary"] = driver.find_element(By.ID, "summary").text
        seen["sources"] = driver.find_element(By.ID, "sources").text

        fail_fintera()
        # A filter never asked before: nothing cached to fall back on for Fintera.
        Select(driver.find_element(By.ID, "f-status")).select_by_value("overdue")
        driver.find_element(By.CSS_SELECTOR, "#filters button[type=submit]").click()
        wait_for_page(driver, 1)
        alert = driver.find_element(By.ID, "alert")
        WebDriverWait(driver, WAIT_S).until(lambda _d: alert.is_displayed())
        seen["alert"] = alert.text
        seen["fintera_status"] = driver.find_element(
            By.CSS_SELECTOR, '#sources li[data-connection="fin"]'
        ).get_attribute("data-status")
        seen["shown_after_failure"] = len(
            driver.find_elements(By.CSS_SELECTOR, "#invoices li.invoice")
        )
        driver.set_window_size(390, 1400)  # a phone's width
        driver.save_screenshot(str(SHOTS / "3-partial-answer-phone.png"))
        seen["screenshots"] = sum(
            1 for shot in SHOTS.glob("*.png") if shot.stat().st_size > 0
        )
    finally:
        driver.quit()
    return seen


def try_pdf(driver) -> str | None:
    """Click 'Open PDF' on a Xarios or Hubsoft invoice of this page; the fetch's result."""
    for li in driver.find_elements(By.CSS_SELECTOR, "#invoices li.invoice"):
        if li.get_attribute("data-provider") not in {"xarios", "hubsoft"}:
            continue
        button = li.find_element(By.CSS_SELECTOR, "button.pdf")
        main = driver.current_window_handle
        button.click()
        WebDriverWait(driver, WAIT_S).until(
            lambda _d, b=button: b.get_attribute("data-result")
        )
        result = button.get_attribute("data-result")
        for handle in driver.window_handles:
            if handle != main:
                driver.switch_to.window(handle)
                driver.close()
        driver.switch_to.window(main)
        if result.startswith("200"):
            return result
    return None


@pytest.mark.timeout(180)
async def test_customer_signs_in_pages_opens_a_pdf_and_sees_a_partial_answer(
    aiohttp_server,
    hubsoft_url,
    fintera_url,
    xarios_url,
    xarios_sim,
    fintera_sim,
):
    """Expired token refused; then all three providers over pages, a PDF, a partial answer."""
    assert shutil.which("chromium"), (
        "chromium missing: `make test` installs it with apt"
    )
    jwks = JwksServer([KEY])
    jwks_served = await aiohttp_server(jwks.app())
    settings = make_settings(
        hubsoft_connection(hubsoft_url),
        fintera_connection(fintera_url, retry_attempts=1),
        xarios_connection(
            xarios_url,
            xarios_sim.issue_refresh_token(),
            options={"document_tenants": {DOC: xarios_sim.tenant_id(0)}},
        ),
        jwt_issuers=(issuer(str(jwks_served.make_url("/jwks.json"))),),
    )
    gateway = await aiohttp_server(create_app(settings, now=lambda: NOW))
    base = str(gateway.make_url("")).rstrip("/")
    token = mint(KEY, DOC)

    now = int(time.time())
    expired = mint(KEY, DOC, exp=now - 3600, iat=now - 7200, nbf=now - 7200)
    seen = await asyncio.to_thread(
        sign_in_and_walk,
        base,
        token,
        expired,
        lambda: fintera_sim.board.set("status", 503),
    )
    assert "token expired" in seen["refused"]
    assert seen["providers"] == {"hubsoft", "fintera", "xarios"}
    assert seen["pages"] > 1
    assert seen["pdf"] == "200 application/pdf"
    assert "BRL" in seen["summary"]
    assert "acme-isp" in seen["sources"]
    assert "Partial answer" in seen["alert"]
    assert "fin" in seen["alert"]
    assert seen["fintera_status"] != "ok"
    assert seen["shown_after_failure"] > 0
    assert seen["screenshots"] == 3
