"""Rebuild the byte corpus of the tiny language models (docs/lm.md, "Data").

Source: the King James Bible as Debian's bible-kjv-text 4.38 ships it, printed by the
`bible` program of bible-kjv 4.38:

    /usr/bin/bible "gen1:1-rev22:21"

That output is a sequence of chapters, each "blank line, heading ('Genesis 1'), blank line,
verses", every verse starting with "  <number> " and wrapped over several lines. The clean-up:

- verse numbers are dropped, each chapter's verse text is joined (all whitespace runs become
  one space) into one paragraph;
- a chapter is written as its heading line, then its paragraph line:
  "Genesis 1\\nIn the beginning God created ...\\n";
- chapters are separated by one blank line ("\\n" between two chapters);
- the result must be ASCII (checked).

Chapters are numbered 0, 1, ... in Bible order (1189 of them); chapter i goes to the
validation split when (i + 1) % 20 == 0 (the 20th, 40th, ... chapter: 59 chapters), the rest
to the training split. Writes, into the output directory (default train/data/):

    train.bin, val.bin   raw bytes of the two splits
    corpus.json          sizes, chapter counts, sha256 of both files, source package versions

Usage: python3 train/corpus.py [--out DIR] [--bible /usr/bin/bible] [--text FILE]
(--text reads a saved copy of the `bible` output instead of running the program).
"""

import argparse
import hashlib
import json
import os
import re
import subprocess

VERSE = re.compile(r"^  (\d+) (.*)$")
EXPECTED_CHAPTERS = 1189
VAL_EVERY = 20


def package_version(name):
    """The installed Debian version of package `name`, or None where dpkg cannot tell."""
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", name],
                             capture_output=True, text=True, check=True).stdout
        return out.strip() or None
    except (OSError, subprocess.CalledProcessError):
        return None


def parse_chapters(text):
    """Split the `bible` output into a list of (heading, paragraph) pairs."""
    lines = text.split("\n")
    chapters = []
    heading, verses = None, []
    for n, line in enumerate(lines):
        m = VERSE.match(line)
        if m:
            if heading is None:
                raise ValueError(f"line {n + 1}: verse before any chapter heading")
            verses.append(m.group(2))
        elif line.strip() == "":
            continue
        elif (n > 0 and lines[n - 1].strip() == "" and n + 1 < len(lines)
              and lines[n + 1].strip() == ""):
            # A heading: a lone line between two blank lines.
            if heading is not None:
                chapters.append((heading, verses))
            heading, verses = line.strip(), []
        else:
            # Continuation of the current verse.
            if not verses:
                raise ValueError(f"line {n + 1}: text before the first verse: {line!r}")
            verses[-1] += " " + line
    if heading is not None:
        chapters.append((heading, verses))
    return [(h, " ".join(" ".join(v.split()) for v in vs)) for h, vs in chapters]


def chapter_bytes(heading, paragraph):
    """One chapter as written in the corpus: heading line, paragraph line."""
    return (heading + "\n" + paragraph + "\n").encode("ascii")


def build(text):
    """Return (train_bytes, val_bytes, n_train_chapters, n_val_chapters) for the text."""
    chapters = parse_chapters(text)
    if len(chapters) != EXPECTED_CHAPTERS:
        raise ValueError(f"expected {EXPECTED_CHAPTERS} chapters, found {len(chapters)}")
    train, val = [], []
    for i, (heading, paragraph) in enumerate(chapters):
        (val if (i + 1) % VAL_EVERY == 0 else train).append(chapter_bytes(heading, paragraph))
    return b"\n".join(train), b"\n".join(val), len(train), len(val)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "data"))
    ap.add_argument("--bible", default="/usr/bin/bible")
    ap.add_argument("--text", help="a saved copy of the bible program's output")
    args = ap.parse_args()

    if args.text:
        with open(args.text, "r", encoding="ascii") as f:
            text = f.read()
    else:
        text = subprocess.run([args.bible, "gen1:1-rev22:21"], capture_output=True,
                              check=True).stdout.decode("ascii")
    train, val, n_train, n_val = build(text)
    os.makedirs(args.out, exist_ok=True)
    meta = {
        "source": 'bible "gen1:1-rev22:21" (Debian bible-kjv, bible-kjv-text)',
        "packages": {p: package_version(p) for p in ("bible-kjv", "bible-kjv-text")},
        "source_bytes": len(text.encode("ascii")),
        "source_sha256": hashlib.sha256(text.encode("ascii")).hexdigest(),
        "recipe": "verse numbers dropped; chapter = heading line + one paragraph line; "
                  "chapters joined by a blank line; chapter i (0-based) held out when "
                  "(i + 1) % 20 == 0",
        "chapters": {"train": n_train, "val": n_val},
    }
    for name, data in (("train", train), ("val", val)):
        with open(os.path.join(args.out, name + ".bin"), "wb") as f:
            f.write(data)
        meta[name] = {"file": name + ".bin", "bytes": len(data),
                      "sha256": hashlib.sha256(data).hexdigest()}
    with open(os.path.join(args.out, "corpus.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    print(json.dumps(meta, indent=2))


if __name__ == "__main__":
    main()
