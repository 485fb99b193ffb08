; Inno Setup script of the catsort Windows installer. NOT RUNNABLE HERE (Linux): built and
; exercised only by .github/workflows/packages.yml on windows-2022:
;   iscc /DAppVersion=0.2.0 /DSourceDir=..\..\runs\pkg\dist\catsort packaging\windows\catsort.iss
; Installs the PyInstaller bundle (both executables and their shared _internal\) per machine or
; per user ({autopf}), a start-menu entry for the window, an optional desktop icon, and an uninstaller.
#ifndef AppVersion
  #define AppVersion "0.0.0"
#endif
#ifndef SourceDir
  #define SourceDir "..\..\runs\pkg\dist\catsort"
#endif

[Setup]
; Stable forever: Windows recognises upgrades and the uninstaller by this id. Never change it.
AppId={{01387EDE-D47B-4827-B562-28AD4A0CE233}
AppName=catsort
AppVersion={#AppVersion}
AppVerName=catsort {#AppVersion}
AppPublisher=catsort maintainers
DefaultDirName={autopf}\catsort
DefaultGroupName=catsort
DisableProgramGroupPage=yes
; commandline: the workflow installs with /CURRENTUSER; dialog: people choose "for me only" or "for everyone"
PrivilegesRequiredOverridesAllowed=commandline dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
UninstallDisplayIcon={app}\catsort-gui.exe
UninstallDisplayName=catsort
OutputDir=..\..\runs\pkg
OutputBaseFilename=catsort-{#AppVersion}-windows-x64-setup
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
CloseApplications=yes

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[InstallDelete]
; Clean upgrade: the previous version's _internal\ goes first, so no stale DLL or module of an
; older build can be picked up next to the new ones.
Type: filesandordirs; Name: "{app}\_internal"

[Files]
Source: "{#SourceDir}\catsort-gui.exe"; DestDir: "{app}"; Flags: ignoreversion
Source: "{#SourceDir}\catsort.exe"; DestDir: "{app}"; Flags: ignoreversion
Source: "{#SourceDir}\_internal\*"; DestDir: "{app}\_internal"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\catsort"; Filename: "{app}\catsort-gui.exe"; Comment: "Put cat photos in cats\ and dog photos in dogs\"
Name: "{autodesktop}\catsort"; Filename: "{app}\catsort-gui.exe"; Tasks: desktopicon

[Run]
Filename: "{app}\catsort-gui.exe"; Description: "{cm:LaunchProgram,catsort}"; Flags: nowait postinstall skipifsilent

[UninstallDelete]
Type: filesandordirs; Name: "{app}\_internal"
