"""How extensions meet the window and each other: a Protocol and a registry.

An extension is a function ``attach(window: ViewerWindow, options: ViewOptions)`` named in
``ui.app.EXTENSIONS``. It may use only what ``ViewerWindow`` lists (notes/apis.md says
what each member is for), registers itself in ``window.extensions`` under a name, and
finds other extensions there, never through attributes set on the window.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Callable, Iterator, Protocol, TypeVar

if TYPE_CHECKING:  # pragma: no cover
    from PySide6.QtCore import QObject, Qt, SignalInstance
    from PySide6.QtGui import QAction
    from PySide6.QtWidgets import QDockWidget, QMenu, QSlider, QStatusBar, QWidget

    from ich_viewer.dicom.model import Series, Study
    from ich_viewer.ui.image_view import SliceView

T = TypeVar("T")


class ViewerWindow(Protocol):
    """The window as extensions see it (``MainWindow`` implements it)."""

    study_opened: SignalInstance
    """(Study) a study is on screen; its first series follows with ``series_shown``."""
    series_shown: SignalInstance
    """(Series) another series is on screen; ``slice_changed`` follows."""
    slice_changed: SignalInstance
    """(int) the slice on screen changed."""
    study_closing: SignalInstance
    """() the study is about to go: stop work on it (the window waits for nobody)."""
    window_changed: SignalInstance
    """(center, width) the grey-level window changed."""
    overlays_rewritten: SignalInstance
    """() the window rewrote the image's corner texts; an extension that adds a line re-adds it."""
    extensions: ExtensionRegistry

    def current_study(self) -> Study | None: ...
    def current_series(self) -> Series | None: ...
    def current_index(self) -> int: ...
    def set_slice(self, index: int, force: bool = False) -> None: ...
    def show_series(self, series_or_row: Series | int) -> None: ...
    def open_path(self, path: str | os.PathLike[str]) -> None: ...
    def image_view(self) -> SliceView: ...
    def menu(self, name: str) -> QMenu: ...
    def add_side_panel(self, widget: QWidget, title: str, area: Qt.DockWidgetArea = ...) -> QDockWidget: ...
    def add_slider_decoration(self, widget: QWidget) -> None: ...
    def add_view(self, widget: QWidget, stretch: int = 1) -> None: ...
    def slice_slider(self) -> QSlider: ...
    def add_action(self, name: str, text: str, slot: Callable[[], object], keys: tuple[str, ...] = (),
                   checkable: bool = False) -> QAction: ...
    def action(self, name: str) -> QAction | None: ...
    def show_status(self, text: str, msecs: int = 0) -> None: ...
    def show_error(self, title: str, text: str) -> None: ...
    def statusBar(self) -> QStatusBar: ...  # noqa: N802 (Qt's name)
    def installEventFilter(self, watcher: QObject) -> None: ...  # noqa: N802


class ExtensionRegistry:
    """The extensions attached to one window, by name, in the order they were added."""

    def __init__(self) -> None:
        self._items: dict[str, object] = {}

    def add(self, name: str, extension: object) -> None:
        if name in self._items:
            raise ValueError(f"an extension called {name!r} is already attached")
        self._items[name] = extension

    def get(self, name: str, kind: type[T]) -> T | None:
        """The extension called ``name`` if it is a ``kind`` (None when absent)."""
        item = self._items.get(name)
        return item if isinstance(item, kind) else None

    def __getitem__(self, name: str) -> Any:
        return self._items[name]

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)
