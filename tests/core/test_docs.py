"""The documentation's front door and its generated key reference stay true to the code."""

from pathlib import Path

from edgespacecom.reference import scenario_reference

ROOT = Path(__file__).resolve().parents[2]


def test_scenario_key_reference_is_the_generated_one():
    page = (ROOT / "docs" / "scenario-keys.md").read_text()
    assert page == scenario_reference(), "regenerate: python -m edgespacecom.reference > docs/scenario-keys.md"


def test_readme_is_a_front_door_whose_links_exist():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    assert "make demo" in readme and "make test" in readme
    import re

    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme):
        if not target.startswith("http"):
            assert (ROOT / target).exists(), target
    for page in (ROOT / "docs").glob("*.md"):
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", page.read_text()):
            if not target.startswith("http"):
                assert (page.parent / target).exists(), f"{page.name}: {target}"
