# Helpers shared by the recipes (sourced, not run): one-line errors, tool checks, downloads
# that never leave a partial file under its final name, and placing the Multi30k files.

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

# The public release has 29,000 / 1,014 / 1,000 lines; anything else is not Multi30k task 1.
# Each file is checked before it takes its final name under $RAW, so a bad copy or a broken
# download never stays behind to be trusted by a re-run.
declare -gA MULTI30K_LINES=([train]=29000 [valid]=1014 [test2016]=1000)
declare -gA MULTI30K_REMOTE=([train]=train [valid]=val [test2016]=test_2016_flickr)
multi30k_place() {  # multi30k_place SPLIT LANG: $RAW/SPLIT.LANG from $NMT_DATA_DIR or the public release at $URL
    local split=$1 lang=$2 origin tmp="$RAW/.$1.$2.part"
    if [[ -n "${NMT_DATA_DIR:-}" ]]; then
        origin="$NMT_DATA_DIR/$split.$lang"
        [[ -r "$origin" ]] || die "$origin is missing or unreadable"
        cp "$origin" "$tmp"
    else
        origin="$URL/${MULTI30K_REMOTE[$split]}.$lang.gz"
        fetch "$origin" "$tmp.gz" "set NMT_DATA_DIR to a local Multi30k copy"
        gzip -dc "$tmp.gz" > "$tmp" 2> /dev/null || { rm -f "$tmp" "$tmp.gz"; die "$origin is not a gzip file"; }
        rm -f "$tmp.gz"
    fi
    local got; got=$(wc -l < "$tmp")
    if [[ "$got" -ne "${MULTI30K_LINES[$split]}" ]]; then
        rm -f "$tmp"
        die "$origin has $got lines, Multi30k $split has ${MULTI30K_LINES[$split]}"
    fi
    mv "$tmp" "$RAW/$split.$lang"
}
