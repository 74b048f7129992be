"""LOCAL ONLY: draw a Teams card the way Teams does, with Microsoft's own Adaptive Cards renderer (the
npm package `adaptivecards`) in Chromium: to check that a card parses with no warnings, and to picture it.

    python -m local_dev.card_render docs/teams-card.png   # the README's picture, from the app's real payload
"""

import json
import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
RENDERER = REPO_ROOT / "node_modules" / "adaptivecards" / "dist" / "adaptivecards.min.js"
STYLES = REPO_ROOT / "node_modules" / "adaptivecards" / "dist" / "adaptivecards.css"
PAGE = ("<!doctype html><html><head><meta charset='utf-8'><style>body{margin:0;padding:16px;background:#f5f5f5;"
        "font-family:'Segoe UI',system-ui,sans-serif}#card{background:#fff;border-radius:4px;"
        "box-shadow:0 1px 3px rgba(0,0,0,.2);width:480px}</style></head><body><div id='card'></div></body></html>")
DRAW = """(payload) => {
    // Teams reads markdown where Adaptive Cards allow it; a minimal link processor stands in for its own,
    // so a text the card lets be read as markdown would show up here as a link.
    AdaptiveCards.AdaptiveCard.onProcessMarkdown = (text, result) => {
        result.outputHtml = text.replace(/\\[([^\\]]+)\\]\\(([^)]+)\\)/g, '<a href="$2">$1</a>');
        result.didProcess = true;
    };
    const card = new AdaptiveCards.AdaptiveCard();
    const context = new AdaptiveCards.SerializationContext();
    card.parse(payload, context);
    const events = [];
    for (let i = 0; i < context.eventCount; i++) {
        const event = context.getEventAt(i);
        events.push(`${event.phase}/${event.event}: ${event.message}`);
    }
    const drawn = card.render();
    document.getElementById("card").appendChild(drawn);
    return {events, text: drawn.innerText, links: drawn.querySelectorAll("a").length,
            actions: Array.from(drawn.querySelectorAll("button")).map(b => b.innerText.trim())};
}"""


def render(browser, card: dict, picture: Path | None = None) -> dict:
    """Parse and draw `card` in a new page of `browser` (Playwright's); return the renderer's warnings
    (`events`), the text drawn, the number of links in it and the action buttons; save a picture if asked."""
    page = browser.new_page(viewport={"width": 520, "height": 400}, device_scale_factor=2)
    try:
        page.set_content(PAGE)
        page.add_style_tag(path=str(STYLES))
        page.add_script_tag(path=str(RENDERER))
        drawn = page.evaluate(DRAW, card)
        if picture is not None:
            picture.parent.mkdir(parents=True, exist_ok=True)
            page.locator("#card").screenshot(path=str(picture))
        return drawn
    finally:
        page.close()


def demo_card() -> dict:
    """The card the README's channels walk posts to Teams."""
    from shared.notify import teams
    from shared.notify.message import approval_request

    return teams.card(approval_request(
        title="Load November into Sales?", message="1,200 rows staged.", pipeline_name="Load_Sales",
        factory_name="adf-demo", requested_by="dave@contoso.com", approvers=("alice@contoso.com", "bob@contoso.com"),
        required=2, checks=0, expires_at="2026-12-07T10:00:00Z",
        restart_url="https://approvals.contoso.com/api/restart/…", cancel_url="https://approvals.contoso.com/api/cancel/…"))


def main(argv=None) -> int:
    from playwright.sync_api import sync_playwright

    target = Path((argv or sys.argv[1:] or ["docs/teams-card.png"])[0])
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"),
                                             args=["--headless", "--no-sandbox"])
        try:
            drawn = render(browser, demo_card(), target)
        finally:
            browser.close()
    print(json.dumps(drawn, indent=2))
    return 1 if drawn["events"] else 0


if __name__ == "__main__":
    sys.exit(main())
