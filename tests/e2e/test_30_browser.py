"""A real browser (Debian's headless Chromium) uses the demo through lb1, over a WebSocket."""

from conftest import REPO, network_events

CLICKS = 5


def test_counter_rises_over_a_websocket_through_the_balancer(lab, converged, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    base_url = lab.lb_urls[0]
    browser.get(base_url + "/")
    wait = WebDriverWait(browser, 20)
    counter = wait.until(lambda d: d.find_element(By.ID, "wtstack-counter"))
    session_id = browser.find_element(By.ID, "wtstack-session-id").text
    prefix = browser.find_element(By.ID, "wtstack-prefix").text
    assert session_id.startswith(prefix) and prefix in {i.prefix for i in lab.topology.instances}

    for expected in range(1, CLICKS + 1):
        browser.find_element(By.ID, "wtstack-increment").click()
        wait.until(lambda d, n=str(expected): d.find_element(By.ID, "wtstack-counter").text == n)
    assert counter.text == str(CLICKS)
    assert browser.find_element(By.ID, "wtstack-session-id").text == session_id

    screenshot = REPO / "tests/output/browser-counter.png"
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(screenshot))

    sockets, frames_in, frames_out = {}, 0, 0
    for method, params in network_events(browser):
        if method == "Network.webSocketCreated":
            sockets[params["requestId"]] = params["url"]
        elif method == "Network.webSocketFrameReceived" and params["requestId"] in sockets:
            frames_in += 1
        elif method == "Network.webSocketFrameSent" and params["requestId"] in sockets:
            frames_out += 1
    print(f"\nWebSockets: {list(sockets.values())}; frames sent {frames_out}, received {frames_in}; "
          f"screenshot {screenshot}")
    assert any(url.startswith(base_url.replace("http", "ws", 1)) for url in sockets.values()), sockets
    assert frames_out >= CLICKS and frames_in >= CLICKS
