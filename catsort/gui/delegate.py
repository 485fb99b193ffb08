"""Paints one photo of the grid: its thumbnail, its name, and a badge with the verdict.

Pixmaps are made on the GUI thread from the encoded thumbnail the core made during the scan,
at the screen's device pixel ratio, and kept in Qt's pixmap cache (bounded), so 20,000 photos
cost a few tens of MB of JPEG bytes plus the thumbnails on screen.
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QPoint, QRect, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPalette, QPen, QPixmap, QPixmapCache
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from catsort.gui.photos import DecisionRole, PredictionRole, describe, group_of, shown

THUMB = 128
"""Logical size of a thumbnail's box; the scan is asked for THUMB x device pixel ratio pixels."""
CELL = QSize(THUMB + 24, THUMB + 50)
WHITE, INK = QColor("#ffffff"), QColor("#1a1a1a")
BADGE_COLOURS = {
    "cats": (QColor("#b45309"), WHITE),
    "dogs": (QColor("#1d4ed8"), WHITE),
    "unsure": (QColor("#fde047"), INK),
    "other": (QColor("#525252"), WHITE),
    "unreadable": (QColor("#9f1239"), WHITE),
}
"""Each group's badge (fill, text): hues and lightness far apart, so Not sure (yellow, the one light badge)
cannot pass for Other (grey), and every text at least 4.5:1 on its fill. A badge is drawn on its own
fill over the photo, so it reads the same in a light or a dark palette; its caption names the verdict
(see :func:`~catsort.gui.photos.describe`), so colour is never the only sign."""

QPixmapCache.setCacheLimit(96 * 1024)  # KB: ~600 thumbnails at 2x on screen or recently scrolled past


class PhotoDelegate(QStyledItemDelegate):
    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        return CELL

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> None:
        decision = index.data(DecisionRole)
        prediction = index.data(PredictionRole)
        rect = option.rect.adjusted(4, 4, -4, -4)
        palette = option.palette
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        if selected:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(palette.color(QPalette.ColorRole.Highlight))
            painter.drawRoundedRect(rect, 6, 6)
        if option.state & QStyle.StateFlag.State_HasFocus:  # the photo Space previews and, with nothing selected, C/D/O set
            painter.setPen(QPen(palette.color(QPalette.ColorRole.Highlight if not selected else QPalette.ColorRole.HighlightedText), 2,
                                Qt.PenStyle.DashLine))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(rect.adjusted(1, 1, -1, -1), 6, 6)
        box = QRect(rect.left() + (rect.width() - THUMB) // 2, rect.top() + 4, THUMB, THUMB)
        pixmap = self._pixmap(prediction, painter.device().devicePixelRatioF())
        target = box
        if pixmap is None:
            painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
            painter.drawRect(box.adjusted(0, 0, -1, -1))
            painter.drawText(box.adjusted(6, 6, -6, -28), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                             decision.error or "no preview")
        else:
            size = pixmap.deviceIndependentSize().toSize()
            size.scale(box.size(), Qt.AspectRatioMode.KeepAspectRatio)
            target = QRect(0, 0, size.width(), size.height())
            target.moveCenter(box.center())
            painter.drawPixmap(target, pixmap)
        self._badge(painter, box, target, decision)
        text_role = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        painter.setPen(palette.color(text_role))
        name_rect = QRect(rect.left() + 2, box.bottom() + 6, rect.width() - 4, rect.bottom() - box.bottom() - 6)
        name = option.fontMetrics.elidedText(shown(decision.path.name), Qt.TextElideMode.ElideMiddle, name_rect.width())
        painter.drawText(name_rect, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop, name)
        painter.restore()

    @staticmethod
    def _pixmap(prediction, ratio: float) -> QPixmap | None:
        if prediction.thumbnail is None:
            return None
        key = f"{prediction.path}@{ratio}"
        pixmap = QPixmapCache.find(key)
        if pixmap is None:
            pixmap = QPixmap()
            if not pixmap.loadFromData(prediction.thumbnail, "JPEG"):
                return None
            pixmap.setDevicePixelRatio(max(1.0, max(pixmap.width(), pixmap.height()) / THUMB))
            QPixmapCache.insert(key, pixmap)
        return pixmap

    @staticmethod
    def _badge(painter: QPainter, box: QRect, photo: QRect, decision) -> None:
        """The verdict in the bottom-left corner of the ``photo`` drawn in the thumbnail's ``box``, moved only as far
        as it takes to stay inside the box: a portrait photo a few pixels wide would otherwise push it past its
        cell. Text wider than the box (a large font) is elided, never cut."""
        font = QFont(painter.font())
        font.setBold(True)
        font.setPointSizeF(max(7.0, font.pointSizeF() * 0.85))
        painter.setFont(font)
        metrics = painter.fontMetrics()
        room, padding = box.width() - 8, 12
        text = metrics.elidedText(describe(decision), Qt.TextElideMode.ElideRight, room - padding)
        width = metrics.horizontalAdvance(text) + padding
        badge = QRect(0, 0, min(width, room), metrics.height() + 4)
        badge.moveBottomLeft(QPoint(photo.left() + 4, photo.bottom() - 4))
        inside = box.adjusted(4, 4, -4, -4)
        badge.moveLeft(max(inside.left(), min(badge.left(), inside.right() - badge.width() + 1)))
        badge.moveTop(max(inside.top(), min(badge.top(), inside.bottom() - badge.height() + 1)))
        fill, ink = BADGE_COLOURS[group_of(decision)]
        # An edge in the text's colour keeps the badge apart from a photo (or a background) of its own shade;
        # the user's say has a solid one.
        edge = QColor(ink)
        edge.setAlpha(255 if decision.overridden else 110)
        painter.setPen(edge)
        painter.setBrush(fill)
        painter.drawRoundedRect(badge.adjusted(0, 0, -1, -1), 4, 4)
        painter.setPen(ink)
        painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, text)
        painter.setFont(QFont())
