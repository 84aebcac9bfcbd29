# Helpers shared by the recipes (sourced, not run): one-line errors, tool checks, downloads
# that never leave a partial file under its final name.

die() { echo "error: $*" >&2; exit 2; }

need() {  # need TOOL...: each must be on PATH
    local t
    for t in "$@"; do command -v "$t" > /dev/null 2>&1 || die "'$t' is required but was not found on PATH"; done
}

fetch() {  # fetch URL DEST HINT: download to DEST.part, rename when complete; one error line (ending in HINT) when it fails
    local url="$1" dest="$2" hint="$3" reason
    need curl
    echo "== downloading $url"
    if ! reason=$(curl -fsSL --retry 2 --connect-timeout 30 -o "$dest.part" "$url" 2>&1); then
        rm -f "$dest.part"
        reason="${reason##*$'\n'}"
        die "cannot download $url (${reason:-no network?}); $hint"
    fi
    mv "$dest.part" "$dest"
}
