"The web page in headless Chromium (Debian's chromium + chromedriver) against a real server."
import shutil
import time
from pathlib import Path

import pytest
import requests

from captcha_nb.core import image_files
from captcha_nb.testing import start_server, stop_server
from conftest import ROOT, SHARED

CHROMIUM, DRIVER = shutil.which('chromium'), shutil.which('chromedriver')
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER), reason='needs Debian chromium and chromium-driver (apt-get install chromium chromium-driver)')
SHOTS = ROOT/'artifacts'/'screenshots'


@pytest.fixture(scope='module')
def server(tiny_char_model, tiny_captcha_model, tmp_path_factory):
    log = tmp_path_factory.mktemp('page')/'p.jsonl'
    proc, url = start_server([tiny_char_model/'model.onnx', tiny_captcha_model/'model.onnx'], args=['--prediction-log', log])
    yield url
    stop_server(proc)


@pytest.fixture(scope='module')
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ('--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-quic', '--no-first-run',
              '--disable-background-networking', '--disable-component-update', '--disable-sync', '--window-size=1000,1100',
              f'--user-data-dir={tmp_path_factory.mktemp("chrome")}'):
        opts.add_argument(a)
    d = webdriver.Chrome(options=opts, service=Service(DRIVER))
    d.set_page_load_timeout(30)
    yield d
    d.quit()


def wait_for(fn, timeout=20):
    t0 = time.time()
    while time.time() - t0 < timeout:
        v = fn()
        if v: return v
        time.sleep(0.2)
    raise TimeoutError('condition not met')


def shot(browser, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SHOTS/f'{name}.png'))


def answer(browser):
    "The text the page shows as read (set once an answer arrived), else None"
    t = browser.find_element('id', 'answer').get_attribute('data-text')
    return t if t is not None else None


def upload(browser, path):
    from selenium.webdriver.common.by import By
    browser.execute_script("const a = document.getElementById('answer'); a.textContent = ''; delete a.dataset.text;"
                           "document.getElementById('error').textContent = '';")
    browser.find_element(By.ID, 'file').send_keys(str(path))


def a_real_captcha(tmp_path) -> Path:
    d = SHARED/'captcha_images_v2'
    if d.is_dir(): return image_files(d)[0]
    from captcha_nb.data import write_synth
    return image_files(write_synth(tmp_path/'caps', 1, task='captcha', progress=False))[0]


def test_page_reads_a_captcha(server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    browser.get(server + '/')
    assert 'Read a CAPTCHA' in browser.title + browser.page_source
    wait_for(lambda: browser.find_element(By.ID, 'health').text == 'ok')
    wait_for(lambda: 'captcha model' in browser.find_element(By.ID, 'info').text)
    browser.find_element(By.ID, 'mode-captcha').click()
    f = a_real_captcha(tmp_path)
    upload(browser, f)
    text = wait_for(lambda: (answer(browser),) if answer(browser) is not None else None)[0]
    expected = requests.post(server + '/solve', files={'file': ('x.png', f.read_bytes())}).json()['text']
    assert text == expected  # the page shows what the model read (the tiny test model may read nothing)
    width = requests.get(server + '/info').json()['model']['models']['/solve']['input_width']
    wait_for(lambda: browser.find_element(By.ID, 'preview').get_attribute('naturalWidth') == str(width))
    assert 'confidence' in browser.find_element(By.ID, 'confidence').text
    shot(browser, 'captcha')


def test_page_reads_a_character_with_bars(server, browser, tiny_char_model):
    from selenium.webdriver.common.by import By
    from captcha_nb.data import write_synth
    browser.get(server + '/')
    wait_for(lambda: browser.find_element(By.ID, 'health').text == 'ok')
    browser.find_element(By.ID, 'mode-char').click()
    f = image_files(write_synth(tiny_char_model/'page_chars', 1, progress=False))[0]
    upload(browser, f)
    label = wait_for(lambda: answer(browser))
    assert label == requests.post(server + '/predict', files={'file': ('x.png', f.read_bytes())}).json()['label']
    assert len(browser.find_elements(By.CSS_SELECTOR, '#bars .bar')) == 5
    wait_for(lambda: browser.find_element(By.ID, 'preview').get_attribute('naturalWidth') == '32')
    shot(browser, 'character')


def test_page_says_when_an_answer_is_unsure(server, browser, tmp_path):
    "With a threshold set, an answer below it is shown as the best guess, marked unsure, as /solve says"
    from selenium.webdriver.common.by import By
    browser.get(server + '/')
    wait_for(lambda: 'captcha model' in browser.find_element(By.ID, 'info').text)
    browser.find_element(By.ID, 'mode-captcha').click()
    browser.find_element(By.ID, 'min-confidence').send_keys('100')
    f = a_real_captcha(tmp_path)
    served = requests.post(server + '/solve', files={'file': ('x.png', f.read_bytes())}, data={'min_confidence': '1'}).json()
    upload(browser, f)
    wait_for(lambda: answer(browser) is not None)
    shown = browser.find_element(By.ID, 'confidence').text
    assert ('unsure' in shown) is served['unsure'] and (browser.find_element(By.ID, 'answer').get_attribute('data-unsure') == 'true') is served['unsure']
    browser.find_element(By.ID, 'min-confidence').clear()
    shot(browser, 'unsure')


def test_page_shows_rejection(server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    browser.get(server + '/')
    bad = tmp_path/'notes.png'; bad.write_text('this is not an image')
    upload(browser, bad)
    err = wait_for(lambda: browser.find_element(By.ID, 'error').text)
    assert 'Rejected (415)' in err and 'not an image' in err
    shot(browser, 'rejected')


def test_page_escapes_what_it_shows(server, browser, tmp_path):
    "A file name with markup is shown as text, never run"
    from selenium.webdriver.common.by import By
    browser.get(server + '/')
    evil = tmp_path/'<img src=x onerror=alert(1)>.png'
    evil.write_bytes(b'junk')
    upload(browser, evil)
    wait_for(lambda: browser.find_element(By.ID, 'error').text)
    assert '<img src=x' in browser.find_element(By.ID, 'original-cap').text
    assert not browser.find_elements(By.CSS_SELECTOR, 'img[src=x]')


def test_page_with_api_key(tiny_char_model, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from captcha_nb.data import write_synth
    proc, url = start_server([tiny_char_model/'model.onnx'], env={'CAPTCHA_API_KEY': 'k3y'}, args=['--prediction-log', tmp_path/'p.jsonl'])
    try:
        browser.get(url + '/')
        wait_for(lambda: browser.find_element(By.ID, 'health').text == 'ok')
        f = image_files(write_synth(tmp_path/'c', 1, progress=False))[0]
        upload(browser, f)
        assert 'Rejected (401)' in wait_for(lambda: browser.find_element(By.ID, 'error').text)
        browser.find_element(By.ID, 'key').send_keys('k3y')
        browser.find_element(By.ID, 'read').click()
        assert wait_for(lambda: answer(browser))
        assert browser.find_element(By.ID, 'mode-captcha').get_attribute('disabled')  # no CAPTCHA model here
        assert 'k3y' not in (browser.execute_script('return JSON.stringify(localStorage) + document.cookie') or '')
        shot(browser, 'api-key')
    finally: stop_server(proc)


def test_page_on_a_phone(server, browser):
    from selenium.webdriver.common.by import By
    browser.set_window_size(390, 844)
    try:
        browser.get(server + '/')
        wait_for(lambda: browser.find_element(By.ID, 'health').text == 'ok')
        assert browser.execute_script('return document.documentElement.scrollWidth <= window.innerWidth')
        shot(browser, 'phone')
    finally: browser.set_window_size(1000, 1100)


def test_keyboard_opens_file_chooser(server, browser):
    "The drop zone is focusable and Enter triggers the file input"
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    browser.get(server + '/')
    browser.execute_script("window.__clicked = 0; document.getElementById('file').addEventListener('click', e => { window.__clicked++; e.preventDefault(); });")
    drop = browser.find_element(By.ID, 'drop')
    drop.send_keys(Keys.ENTER)
    assert browser.execute_script('return window.__clicked') == 1
