"""Signed object links: what a link grants, and every way a link that was not granted is refused."""

from __future__ import annotations

import pytest
from gtaudit_local.signing import LinkRefused, LinkSigner, object_path
from hypothesis import given
from hypothesis import strategies as st


def test_a_link_grants_its_object() -> None:
    signer = LinkSigner()
    link = signer.sign(object_path("bkt", "a/b c/ü.png"))
    assert link.startswith("/s3/bkt/a/b%20c/%C3%BC.png?X-Amz-Expires=")
    assert signer.verify(link) == ("bkt", "a/b c/ü.png")


@given(key=st.text(min_size=1, max_size=40).filter(lambda k: "\x00" not in k))
def test_any_key_round_trips(key: str) -> None:
    signer = LinkSigner()
    assert signer.verify(signer.sign(object_path("bkt", key))) == ("bkt", key)


def test_the_query_separator_can_be_html_escaped() -> None:
    signer = LinkSigner()
    link = signer.sign(object_path("bkt", "k.png"), amp="&amp;")
    assert "&amp;X-Amz-Signature=" in link
    assert signer.verify(link.replace("&amp;", "&")) == ("bkt", "k.png")


@pytest.mark.parametrize(
    ("name", "mangle"),
    [
        ("unsigned", lambda link: link.partition("?")[0]),
        ("tampered signature", lambda link: link[:-1] + ("0" if link[-1] != "0" else "1")),
        ("another object", lambda link: link.replace("/s3/bkt/k.png", "/s3/bkt/manifest.json")),
        ("another bucket", lambda link: link.replace("/s3/bkt/", "/s3/other/")),
        ("a later expiry", lambda link: link.replace("X-Amz-Expires=", "X-Amz-Expires=9")),
        ("no expiry", lambda link: link.replace("X-Amz-Expires=", "X-Amz-Other=")),
        ("not an object path", lambda link: link.replace("/s3/", "/s4/")),
    ],
)
def test_a_link_that_was_not_granted_is_refused(name: str, mangle: object) -> None:
    signer = LinkSigner()
    link = signer.sign(object_path("bkt", "k.png"))
    with pytest.raises(LinkRefused):
        signer.verify(mangle(link))  # type: ignore[operator]


def test_an_expired_link_is_refused() -> None:
    signer = LinkSigner()
    with pytest.raises(LinkRefused, match="expired"):
        signer.verify(signer.sign(object_path("bkt", "k.png"), expires_in=-1))


def test_a_link_of_another_signer_is_refused() -> None:
    with pytest.raises(LinkRefused, match="signature"):
        LinkSigner().verify(LinkSigner().sign(object_path("bkt", "k.png")))


@pytest.mark.parametrize("path", ["/s3/", "/s3/bkt", "/s3/bkt/", "/s3//k.png"])
def test_a_path_without_bucket_or_key_is_refused(path: str) -> None:
    signer = LinkSigner()
    with pytest.raises(LinkRefused):
        signer.verify(signer.sign(path))
