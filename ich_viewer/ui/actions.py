"""Menus, toolbar and keyboard shortcuts of the main window, in one place.

Every shortcut is a QAction so menus show its key and Help > Controls lists it.
"""
from __future__ import annotations

from functools import partial
from typing import Callable, Protocol

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMenu, QToolBar

from ich_viewer.imaging.presets import PRESETS, Preset


class ActionHost(Protocol):
    """What the menus and keys call on the window (``MainWindow``; this module never imports it,
    so the window and its actions do not import each other)."""

    def menu(self, name: str) -> QMenu: ...
    def open_folder_dialog(self) -> None: ...
    def open_file_dialog(self) -> None: ...
    def open_demo(self, kind: str = ...) -> None: ...
    def rebuild_recent_menu(self) -> None: ...
    def show_load_log(self) -> object: ...
    def close(self) -> bool: ...
    def set_preset(self, preset: Preset | str) -> None: ...
    def step_slice(self, step: int) -> None: ...
    def set_slice(self, index: int, force: bool = False) -> None: ...
    def last_slice(self) -> None: ...
    def toggle_cine(self) -> None: ...
    def step_series(self, step: int) -> None: ...
    def fit(self) -> None: ...
    def zoom(self, factor: float) -> None: ...
    def zoom_one_to_one(self) -> None: ...
    def toggle_overlays(self) -> None: ...
    def show_tag_browser(self) -> object: ...
    def show_controls(self) -> object: ...
    def show_about(self) -> object: ...


class WindowActions:
    """Holds the actions so the window (and tests) can reach them by name."""

    def __init__(self, window: QMainWindow, host: ActionHost) -> None:
        """``window`` owns the actions and toolbar; ``host`` (the same window) is what they call."""
        self.window = window
        self.host = host
        self.by_name: dict[str, QAction] = {}
        self.presets: dict[str, QAction] = {}
        self.preset_group = QActionGroup(window)
        self.preset_group.setExclusive(True)
        self._build_file_menu()
        self._build_view_menu()
        self._build_help_menu()
        self._build_toolbar()

    def _action(self, name: str, text: str, slot: Callable[[], object], keys: tuple[str, ...] = (),
                checkable: bool = False, tip: str = "", short: str = "") -> QAction:
        """A window-wide action: its keys work with menus hidden; Help > Controls lists it."""
        action = QAction(text, self.window)
        if short:
            action.setIconText(short)  # what the toolbar shows
        action.setObjectName(f"action_{name}")
        if keys:
            action.setShortcuts([QKeySequence(k) for k in keys])
        action.setCheckable(checkable)
        action.setToolTip(tip or text.replace("&", ""))
        action.setStatusTip(tip or text.replace("&", ""))
        action.triggered.connect(lambda *_: slot())
        self.window.addAction(action)  # shortcuts work with menus and toolbar hidden
        self.by_name[name] = action
        return action

    # -- menus -----------------------------------------------------------------------
    def _build_file_menu(self) -> None:
        w = self.host
        menu = w.menu("File")
        menu.addAction(self._action("open_folder", "Open &folder…", w.open_folder_dialog, ("Ctrl+O",), short="Open"))
        menu.addAction(self._action("open_file", "Open f&ile (DICOM, DICOMDIR, zip)…", w.open_file_dialog, ("Ctrl+Shift+O",)))
        menu.addAction(self._action("open_demo", "Open &demo study (real head CT, CT-ICH 071)", w.open_demo))
        menu.addAction(self._action("open_phantom", "Open &phantom study (synthetic)", lambda: w.open_demo("phantom")))
        self.recent_menu = menu.addMenu("Open &recent")
        self.recent_menu.setObjectName("menu_recent")
        self.recent_menu.aboutToShow.connect(w.rebuild_recent_menu)
        menu.addSeparator()
        menu.addAction(self._action("load_log", "&Load log…", w.show_load_log, ("Ctrl+L",)))
        menu.addSeparator()
        menu.addAction(self._action("quit", "&Quit", w.close, ("Ctrl+Q",)))

    def _build_view_menu(self) -> None:
        w = self.host
        menu = w.menu("View")
        window_menu = menu.addMenu("&Window preset")
        for preset in PRESETS:
            action = self._action(
                f"preset_{preset.key}", _preset_text(preset), partial(w.set_preset, preset), (preset.key,),
                checkable=True, tip=_preset_tip(preset),
            )
            self.preset_group.addAction(action)
            self.presets[preset.key] = action
            window_menu.addAction(action)
        slice_menu = menu.addMenu("&Slice")
        for name, text, slot, keys in (
            ("next_slice", "Next slice", lambda: w.step_slice(1), ("Down",)),
            ("previous_slice", "Previous slice", lambda: w.step_slice(-1), ("Up",)),
            ("next_10", "10 slices on", lambda: w.step_slice(10), ("PgDown",)),
            ("previous_10", "10 slices back", lambda: w.step_slice(-10), ("PgUp",)),
            ("first_slice", "First slice", lambda: w.set_slice(0), ("Home",)),
            ("last_slice", "Last slice", w.last_slice, ("End",)),
            ("cine", "Cine play / pause", w.toggle_cine, ("Space",)),
        ):
            slice_menu.addAction(self._action(name, text, slot, keys, checkable=name == "cine",
                                              short="Cine" if name == "cine" else ""))
        series_menu = menu.addMenu("S&eries")
        series_menu.addAction(self._action("next_series", "Next series", lambda: w.step_series(1), ("Right",)))
        series_menu.addAction(self._action("previous_series", "Previous series", lambda: w.step_series(-1), ("Left",)))
        menu.addSeparator()
        menu.addAction(self._action("fit", "&Fit to window", w.fit, ("F",), short="Fit"))
        menu.addAction(self._action("zoom_in", "Zoom &in", lambda: w.zoom(1.25), ("+", "=")))
        menu.addAction(self._action("zoom_out", "Zoom &out", lambda: w.zoom(0.8), ("-",)))
        menu.addAction(self._action("one_to_one", "&Actual pixels (1:1)", w.zoom_one_to_one, ("Ctrl+1",)))
        menu.addSeparator()
        overlays = self._action("overlays", "Corner &overlays", w.toggle_overlays, ("O",), checkable=True,
                                short="Overlays")
        overlays.setChecked(True)
        menu.addAction(overlays)
        menu.addAction(self._action("tags", "DICOM &tags…", w.show_tag_browser, ("Ctrl+T",), short="Tags"))

    def _build_help_menu(self) -> None:
        w = self.host
        menu = w.menu("Help")
        menu.addAction(self._action("controls", "&Controls…", w.show_controls, ("F1",)))
        menu.addAction(self._action("about", "&About ICH Viewer", w.show_about))

    def _build_toolbar(self) -> None:
        bar = QToolBar("Window presets", self.window)
        bar.setObjectName("toolbar_presets")
        bar.setMovable(False)
        bar.setIconSize(QSize(16, 16))
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        bar.addAction(self.by_name["open_folder"])
        bar.addSeparator()
        for action in self.presets.values():
            bar.addAction(action)
        bar.addSeparator()
        for name in ("fit", "overlays", "cine", "tags"):
            bar.addAction(self.by_name[name])
        self.toolbar = bar
        self.window.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)

    def shortcut_rows(self) -> list[tuple[str, str]]:
        """(keys, what) for every action with a shortcut, for Help > Controls."""
        rows = []
        for action in self.by_name.values():
            keys = [k.toString(QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts()]
            if keys:
                rows.append((" / ".join(keys), action.text().replace("&", "").rstrip("…")))
        return rows


def _preset_text(preset: Preset) -> str:
    return f"{preset.key} {preset.name}"


def _preset_tip(preset: Preset) -> str:
    if preset.is_default:
        return f"{preset.name}: the slice's own WindowCenter/Width (Brain if absent) - key {preset.key}"
    return f"{preset.name}: W {preset.width:g} L {preset.center:g} - key {preset.key}"
