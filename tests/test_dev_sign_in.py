"""The development sign-in of `make run`: after signing in (or out) it goes back only to a path of this site."""

import pytest
import requests
from werkzeug.wrappers import Response

from local_dev.dev_sign_in import DevSignIn
from local_dev.functions_host import serve


@pytest.fixture(scope="module")
def site():
    with serve(DevSignIn(lambda environ, start_response: Response("app")(environ, start_response))) as running:
        yield running.url


ELSEWHERE = ["/\t/evil.example", "/\n/evil.example", "/\r\n/x", "/%09/evil.example", "/%2F/evil.example",
             "/\\evil.example", "/%5Cevil.example", "https://evil.example", "//evil.example", "///evil.example",
             "\t//evil.example", " /x", "/x y", "/\x00x", "/\u2028/x", "javascript:alert(1)", "http:/x", "/\x85x",
             "", "evil.example"]


@pytest.mark.parametrize("target", ELSEWHERE)
def test_a_redirect_off_this_site_or_with_odd_characters_goes_to_the_root(site, target):
    signed_in = requests.post(f"{site}/.auth/login/aad", data={"identity": "alice@contoso.com",
                                                               "post_login_redirect_uri": target},
                              allow_redirects=False, timeout=10)
    assert signed_in.status_code == 302 and signed_in.headers["Location"] == "/"
    form = requests.get(f"{site}/.auth/login/aad", params={"post_login_redirect_uri": target}, timeout=10)
    assert form.status_code == 200 and 'name="post_login_redirect_uri" value="/"' in form.text
    signed_out = requests.get(f"{site}/.auth/logout", params={"post_logout_redirect_uri": target},
                              allow_redirects=False, timeout=10)
    assert signed_out.status_code == 302 and signed_out.headers["Location"] in ("/", "/.auth/logout/done")


@pytest.mark.parametrize("target", ["/ok/path?x=1", "/api/restart/AbC-_09", "/api/console", "/.auth/me"])
def test_a_path_of_this_site_is_kept(site, target):
    signed_in = requests.post(f"{site}/.auth/login/aad", data={"identity": "alice@contoso.com",
                                                               "post_login_redirect_uri": target},
                              allow_redirects=False, timeout=10)
    assert signed_in.status_code == 302 and signed_in.headers["Location"] == target
    signed_out = requests.get(f"{site}/.auth/logout", params={"post_logout_redirect_uri": target},
                              allow_redirects=False, timeout=10)
    assert signed_out.headers["Location"] == target
