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
from ich_viewer.ui.image_view import SliceView
from ich_viewer.ui.reading_layout import ReadingLayout
from ich_viewer.ui.settings import save_user_presets, user_presets


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
    def current_window(self) -> tuple[float, float]: ...
    def show_status(self, text: str, msecs: int = 0) -> None: ...

    slice_view: SliceView
    reading: ReadingLayout


class WindowActions:
    """Holds the actions so the window (and tests) can reach them by name."""

    def __init__(self, window: QMainWindow, host: ActionHost) -> None:
        """``window`` owns the actions and toolbar; ``host`` (the same window) is what they call."""
        self.window = window
        self.host = host
        self.by_name: dict[str, QAction] = {}
        self.presets: dict[str, QAction] = {}
        self.user_presets: dict[str, QAction] = {}
        """The reader's own presets by key ("Shift+1" ...); ``presets`` holds the ten fixed ones."""
        self.preset_dialog: object = None
        """The own-presets dialog last opened (tests fill it in)."""
        self.preset_group = QActionGroup(window)
        self.preset_group.setExclusive(True)
        self._build_file_menu()
        self._build_view_menu()
        self._build_help_menu()
        self._build_toolbar()
        self.rebuild_user_presets()

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
        self.recent_menu = menu.addMenu("Open &recent")
        self.recent_menu.setObjectName("menu_recent")
        self.recent_menu.aboutToShow.connect(w.rebuild_recent_menu)
        menu.addSeparator()
        menu.addAction(self._action("open_demo", "Open &demo study (real head CT, CT-ICH 071)", w.open_demo))
        menu.addAction(self._action("open_phantom", "Open &phantom study (synthetic)", lambda: w.open_demo("phantom")))
        self._info_separator = menu.addSeparator()
        menu.addAction(self._action("load_log", "&Load log…", w.show_load_log, ("Ctrl+L",)))
        menu.addSeparator()
        menu.addAction(self._action("quit", "&Quit", w.close, ("Ctrl+Q",)))
        menu.aboutToShow.connect(self.order_file_menu)

    def order_file_menu(self) -> None:
        """Open…, recent, demos, then what extensions added (Export…), the load log, Quit last."""
        menu = self.host.menu("File")
        actions = menu.actions()
        quit_action = self.by_name["quit"]
        for action in actions[actions.index(quit_action) + 1:]:  # added after Quit by an extension
            menu.removeAction(action)
            menu.insertAction(self._info_separator, action)

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
        window_menu.addSeparator()
        self.user_preset_menu = window_menu.addMenu("&Own presets (Shift+1 …)")
        window_menu.addAction(self._action("save_preset", "Save this window as an own preset…",
                                           self.save_current_as_preset))
        window_menu.addAction(self._action("edit_presets", "Edit own presets…", self.edit_user_presets))
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
        view = w.slice_view
        menu.addAction(self._action("invert", "&Invert grey scale", lambda: view.set_inverted(not view.inverted),
                                    ("I",), checkable=True, short="Invert"))
        menu.addAction(self._action("rotate_cw", "Rotate 90° clockwise", lambda: view.rotate(1), (".",)))
        menu.addAction(self._action("rotate_ccw", "Rotate 90° anticlockwise", lambda: view.rotate(-1), (",",)))
        menu.addAction(self._action("flip_h", "Flip left-right", lambda: view.flip(True), ("H",)))
        menu.addAction(self._action("flip_v", "Flip top-bottom", lambda: view.flip(False), ("Shift+H",)))
        smooth = self._action("smooth", "Smooth when magnified", self._toggle_smooth, checkable=True)
        smooth.setChecked(view.smooth_when_magnified)
        menu.addAction(smooth)
        menu.addAction(self._action("reset_all", "&Reset view and window (zoom, turn, flip, invert, preset)",
                                    self.reset_all, ("Backspace",), short="Reset"))
        menu.addSeparator()
        menu.addAction(self._action("image_only", "Image only (full screen)", w.reading.toggle_image_only,
                                    ("F11",), checkable=True, short="Full screen"))
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
        for name in ("fit", "invert", "reset_all", "overlays", "cine", "image_only", "tags"):
            bar.addAction(self.by_name[name])
        self.toolbar = bar
        self.window.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)

    def shortcut_rows(self) -> list[tuple[str, str, str]]:
        """(action name, keys, what) for every action with a shortcut, for Help > Controls."""
        rows = []
        for name, action in self.by_name.items():
            keys = [k.toString(QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts()]
            if keys:
                rows.append((name, " / ".join(keys), action.text().replace("&", "").rstrip("…")))
        return rows

    def preset_action(self, key: str) -> QAction:
        """The action of a fixed ("1") or own ("Shift+1") preset."""
        return self.presets[key] if key in self.presets else self.user_presets[key]

    # -- view --------------------------------------------------------------------------
    def _toggle_smooth(self) -> None:
        self.host.slice_view.set_smooth_when_magnified(self.by_name["smooth"].isChecked())

    def reset_all(self) -> None:
        """Backspace: fitted, unturned, unflipped, not inverted, the Default preset."""
        self.host.slice_view.reset_view()
        self.by_name["invert"].setChecked(False)
        self.host.set_preset(PRESETS[0])

    # -- own presets --------------------------------------------------------------------
    def rebuild_user_presets(self) -> None:
        """(Re)make the Shift+number actions from the settings."""
        for key, action in self.user_presets.items():
            self.preset_group.removeAction(action)
            self.window.removeAction(action)
            self.by_name.pop(f"preset_{key}", None)
            action.deleteLater()
        self.user_presets = {}
        menu = self.user_preset_menu
        menu.clear()
        for preset in user_presets():
            action = self._action(f"preset_{preset.key}", f"{preset.name} (W {preset.width:g} L {preset.center:g})",
                                  partial(self.host.set_preset, preset), (preset.key,), checkable=True,
                                  tip=_preset_tip(preset))
            self.preset_group.addAction(action)
            self.user_presets[preset.key] = action
            menu.addAction(action)
        if not self.user_presets:
            menu.addAction("(none yet)").setEnabled(False)

    def edit_user_presets(self, put_current: bool = False) -> object:
        from ich_viewer.ui.preset_dialog import PresetDialog

        dialog = PresetDialog(user_presets(), self.window)
        if put_current:
            center, width = self.host.current_window()
            dialog.put(center, width)
        dialog.accepted.connect(lambda: self._save_presets(dialog.presets()))
        dialog.setModal(True)
        dialog.show()
        self.preset_dialog = dialog
        return dialog

    def save_current_as_preset(self) -> object:
        return self.edit_user_presets(put_current=True)

    def _save_presets(self, presets: list[Preset]) -> None:
        save_user_presets(presets)
        self.rebuild_user_presets()
        self.host.show_status(f"{len(presets)} own window preset(s) saved (Shift+1 …)", 4000)


def _preset_text(preset: Preset) -> str:
    return f"{preset.key} {preset.name}"


def _preset_tip(preset: Preset) -> str:
    if preset.is_default:
        return f"{preset.name}: the slice's own WindowCenter/Width (Brain if absent) - key {preset.key}"
    if preset.key.startswith("Shift"):
        return f"{preset.name} (own): W {preset.width:g} L {preset.center:g} - key {preset.key}"
    return f"{preset.name}: W {preset.width:g} L {preset.center:g} - key {preset.key}"
