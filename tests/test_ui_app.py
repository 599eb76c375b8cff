"""Application start-up: extensions, names, style, settings."""
from __future__ import annotations

import sys
import types

import pytest

pytest.importorskip("pytestqt")

from ich_viewer.options import ViewOptions  # noqa: E402
from ich_viewer.ui import app  # noqa: E402

CALLS: list[tuple[object, object]] = []


def good_extension(window, args):
    CALLS.append((window, args))
    window.menu("Tools").addAction("from extension")


def bad_extension(window, args):
    raise RuntimeError("model file missing")


@pytest.fixture
def fake_extensions(monkeypatch):
    module = types.ModuleType("fake_viewer_extensions")
    module.good = good_extension
    module.bad = bad_extension
    monkeypatch.setitem(sys.modules, "fake_viewer_extensions", module)
    CALLS.clear()
    return module


def test_extensions_run_and_a_failing_one_is_reported_not_fatal(qtbot, isolated_settings, monkeypatch, fake_extensions):
    monkeypatch.setattr(app, "EXTENSIONS", ["fake_viewer_extensions:bad", "fake_viewer_extensions:good",
                                            "no_such_module_xyz:attach"])
    args = ViewOptions()
    window = app.build_window(args)
    qtbot.addWidget(window)
    assert CALLS == [(window, args)]
    assert [a.text() for a in window.menu("Tools").actions()] == ["from extension"]
    assert "no_such_module_xyz:attach failed" in window.statusBar().currentMessage()
    assert app.run_extensions(window, args, ["fake_viewer_extensions:bad"]) == ["fake_viewer_extensions:bad"]
    assert "model file missing" in window.statusBar().currentMessage()
    window.close()


def test_application_names_style_and_icon(qapp):
    application = app.application()
    assert application is qapp
    assert application.applicationName() == "ICH Viewer" and application.organizationName() == "ICH Viewer"
    assert "QToolBar" in application.styleSheet()
    assert not application.windowIcon().isNull()


def test_settings_file_comes_from_the_environment(isolated_settings):
    from ich_viewer.ui.settings import add_recent_study, app_settings, clear_recent_studies, recent_studies

    assert app_settings().fileName() == str(isolated_settings / "settings.ini")
    for i in range(12):
        add_recent_study(f"/studies/{i}")
    add_recent_study("/studies/5")
    recent = recent_studies()
    assert recent[0] == "/studies/5" and len(recent) == 10 and recent.count("/studies/5") == 1
    clear_recent_studies()
    assert recent_studies() == []


def test_extensions_find_each_other_through_the_registry_only():
    from ich_viewer.ui.extension import ExtensionRegistry

    registry = ExtensionRegistry()
    panel = object()
    registry.add("measure", panel)
    with pytest.raises(ValueError, match="already attached"):
        registry.add("measure", object())
    assert registry.get("measure", object) is panel and registry["measure"] is panel
    assert registry.get("measure", str) is None, "the wrong kind is not handed out"
    assert registry.get("missing", object) is None and list(registry) == ["measure"]


def test_the_real_extensions_register_and_set_no_attributes(make_window):
    window = make_window(ViewOptions(no_model=True))
    assert list(window.extensions) == ["inference", "review", "measure", "reformat", "first_run", "worklist"]
    assert not any(hasattr(window, name) for name in ("inference", "review", "measure", "reformat"))
