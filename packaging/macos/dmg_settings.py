# dmgbuild settings of the catsort disk image. NOT RUNNABLE HERE (Linux): used only by
# .github/workflows/packages.yml on macos-14:
#   dmgbuild -s packaging/macos/dmg_settings.py -D app=runs/pkg/dist/catsort.app catsort runs/pkg/catsort-VERSION-macos-arm64.dmg
# catsort.app comes from the spec's BUNDLE (the window is its main executable; the CLI sits beside it
# in catsort.app/Contents/MacOS/catsort). The image shows the app and a link to /Applications.
import os.path

application = defines.get("app", "runs/pkg/dist/catsort.app")  # noqa: F821 (dmgbuild provides `defines`)
appname = os.path.basename(application)

format = "UDZO"
filesystem = "HFS+"
files = [application]
symlinks = {"Applications": "/Applications"}
icon_locations = {appname: (140, 130), "Applications": (460, 130)}
window_rect = ((200, 200), (600, 320))
default_view = "icon-view"
show_icon_preview = False
icon_size = 128
text_size = 13
