"""OAuth sign-in with the official Python SDK (2.x) against toolhost's
embedded authorization server, with nothing but the server URL.

Usage:
  check_oauth.py URL CERT_PEM code USER PASSWORD
      `OAuthClientProvider`: discovery from the 401, dynamic client
      registration, authorization code + PKCE. The sign-in page is answered
      headlessly, the way a person would fill it in; then, once the short
      access token has expired, the SDK must refresh it (rotation) by itself.
  check_oauth.py URL CERT_PEM client CLIENT_ID CLIENT_SECRET
      `ClientCredentialsOAuthProvider` with an operator-created client.
"""

import asyncio
import re
import ssl
import sys
from urllib.parse import parse_qs, urlparse

import httpx2
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientMetadata

from common import expect, run

REDIRECT_URI = "http://127.0.0.1:33418/callback"


class MemoryStorage:
    """Tokens and the registered client, kept for the life of the script."""

    def __init__(self):
        self.tokens = None
        self.client_info = None
        self.token_writes = 0

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        self.tokens = tokens
        self.token_writes += 1

    async def get_client_info(self):
        return self.client_info

    async def set_client_info(self, client_info):
        self.client_info = client_info


def form_field(page, name):
    match = re.search(rf'name="{name}" value="([^"]*)"', page)
    expect(match, f"the sign-in page has no {name} field: {page[:400]}")
    return match.group(1)


class Browser:
    """Stands in for the user's browser: opens the authorization URL, signs
    in on the page, and hands the redirect's code to the SDK."""

    def __init__(self, cert, user, password):
        self.http = httpx2.AsyncClient(verify=ssl.create_default_context(cafile=cert), follow_redirects=False)
        self.user = user
        self.password = password
        self.result = asyncio.get_running_loop().create_future()
        self.pages = 0

    async def open(self, authorization_url):
        self.pages += 1
        page = await self.http.get(authorization_url)
        if page.status_code == 302:
            # Consent remembered and still signed in: straight back.
            return self.back(page.headers["location"])
        expect(page.status_code == 200, f"authorization page: {page.status_code} {page.text[:300]}")
        form = {
            "flow": form_field(page.text, "flow"),
            "csrf": form_field(page.text, "csrf"),
            "username": self.user,
            "password": self.password,
            "action": "allow",
        }
        origin = f"{urlparse(authorization_url).scheme}://{urlparse(authorization_url).netloc}"
        answer = await self.http.post(f"{origin}/authorize", data=form)
        expect(answer.status_code == 302, f"sign-in answered {answer.status_code}: {answer.text[:300]}")
        self.back(answer.headers["location"])

    def back(self, location):
        expect(location.startswith(REDIRECT_URI), f"redirected to {location}")
        query = parse_qs(urlparse(location).query)
        expect("code" in query, f"no code in {location}")
        self.result.set_result(
            AuthorizationCodeResult(code=query["code"][0], state=query.get("state", [None])[0], iss=query.get("iss", [None])[0])
        )

    async def callback(self):
        return await self.result


async def whoami(client):
    result = await client.call_tool("whoami", {})
    expect(not result.is_error, f"whoami failed: {result}")
    return result.structured_content


async def code_flow(url, cert, user, password):
    storage = MemoryStorage()
    browser = Browser(cert, user, password)
    provider = OAuthClientProvider(
        server_url=url,
        client_metadata=OAuthClientMetadata(
            client_name="python-sdk-interop",
            redirect_uris=[REDIRECT_URI],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=browser.open,
        callback_handler=browser.callback,
    )
    http = httpx2.AsyncClient(auth=provider, verify=ssl.create_default_context(cafile=cert), timeout=httpx2.Timeout(30.0))
    async with http:
        async with Client(streamable_http_client(url, http_client=http), mode="legacy") as client:
            who = await whoami(client)
            expect(who["subject"] == user, f"signed in as {who}")
            expect(who["client_id"] == storage.client_info.client_id, f"client {who} is not the registered one")
            expect(storage.tokens.refresh_token, "no refresh token issued")
            first_refresh = storage.tokens.refresh_token
            # The server issues short access tokens for this test: wait one
            # out, and the SDK must refresh (a rotated refresh token comes back).
            await asyncio.sleep(float(storage.tokens.expires_in or 1) + 1.5)
            who = await whoami(client)
            expect(who["subject"] == user, f"after refresh: {who}")
            expect(storage.tokens.refresh_token != first_refresh, "the refresh token did not rotate")
            expect(browser.pages == 1, f"the user was asked to sign in {browser.pages} times")
            print(f"signed in as {user}; client {storage.client_info.client_id}; {storage.token_writes} token sets")


async def client_credentials(url, cert, client_id, secret):
    origin = f"{urlparse(url).scheme}://{urlparse(url).netloc}"
    provider = ClientCredentialsOAuthProvider(
        server_url=url,
        storage=MemoryStorage(),
        client_id=client_id,
        client_secret=secret,
        scope="read",
        issuer=origin,
    )
    http = httpx2.AsyncClient(auth=provider, verify=ssl.create_default_context(cafile=cert), timeout=httpx2.Timeout(30.0))
    async with http:
        async with Client(streamable_http_client(url, http_client=http), mode="legacy") as client:
            who = await whoami(client)
            # The SDK picks scopes from the challenge (MCP's scope selection),
            # so any non-empty subset of what the client may have is right.
            granted = set(who["scopes"])
            expect(who["subject"] == client_id and granted and granted <= {"read", "write"},
                   f"client credentials gave {who}")
            print(f"client {client_id} with scopes {who['scopes']}")


if __name__ == "__main__":
    if len(sys.argv) != 6 or sys.argv[3] not in ("code", "client"):
        sys.exit("usage: check_oauth.py URL CERT_PEM code USER PASSWORD | client ID SECRET")
    url, cert, mode, a, b = sys.argv[1:]
    if mode == "code":
        run("python oauth (code)", lambda: code_flow(url, cert, a, b))
    else:
        run("python oauth (client)", lambda: client_credentials(url, cert, a, b))
