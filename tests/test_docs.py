"""The documentation holds together: README.md stays short, every relative
link in README.md, docs/ and benchmarks/README.md reaches an existing file
(and heading), the docs pages the code cites exist with the headings it
names, and no file of the repository refers to anything outside it."""
import glob
import os
import os.path as osp
import re
from typing import Dict, List, Set, Tuple

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
README_MAX_LINES = 250

FENCE = re.compile(r'^\s*(```|~~~)')
HEADING = re.compile(r'^(#{1,6})\s+(.*?)\s*#*\s*$')
# [text](target) and ![alt](target); the target ends at whitespace or ')'.
LINK = re.compile(r'!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?'
                  r'(?:\s+"[^"]*")?\s*\)')
INLINE_CODE = re.compile(r'`[^`\n]*`')
# Code cites a page as ``docs/<page>.md`` and a heading of it as
# ``docs/<page>.md, "Heading"``.
DOC_CITATION = re.compile(r'docs/([\w./-]+\.md)(?:,\s*"([^"]+)")?')


def doc_files() -> List[str]:
    pages = [
        osp.join(REPO, 'README.md'),
        osp.join(REPO, 'benchmarks', 'README.md')
    ]
    pages += sorted(
        glob.glob(osp.join(REPO, 'docs', '**', '*.md'), recursive=True))
    return pages


def prose_lines(text: str) -> List[Tuple[int, str]]:
    """(line number, line) of every line outside fenced code blocks."""
    out, fenced = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            out.append((number, line))
    return out


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: markup dropped, lower case, every
    character but letters, digits, '_', '-' and spaces removed, spaces
    turned into '-'."""
    text = re.sub(r'!?\[([^\]]*)\]\([^)]*\)', r'\1', heading)
    text = re.sub(r'<[^>]+>', '', text).strip().lower()
    text = re.sub(r'[^\w\- ]', '', text)
    return text.replace(' ', '-')


def anchors(path: str) -> Set[str]:
    """Every heading anchor of a Markdown page (duplicates numbered as
    GitHub numbers them: 'x', 'x-1', ...)."""
    seen: Dict[str, int] = {}
    out = set()
    with open(path, encoding='utf-8') as f:
        lines = prose_lines(f.read())
    for _, line in lines:
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        out.add(base if count == 0 else f'{base}-{count}')
    return out


def headings(path: str) -> Set[str]:
    with open(path, encoding='utf-8') as f:
        lines = prose_lines(f.read())
    return {
        HEADING.match(line).group(2)
        for _, line in lines if HEADING.match(line)
    }


def relative_links(path: str) -> List[Tuple[int, str]]:
    """(line, target) of every link of the page that is not a URL.

    Fenced code and inline code are blanked out first (keeping offsets), and
    the page is searched as a whole, so a link text may wrap lines.
    """
    with open(path, encoding='utf-8') as f:
        text = f.read()
    lines = text.splitlines(keepends=True)
    prose = {number for number, _ in prose_lines(text)}
    text = ''.join(line if number in prose else '\n'
                   for number, line in enumerate(lines, 1))
    text = INLINE_CODE.sub(lambda m: ' ' * len(m.group(0)), text)
    out = []
    for match in LINK.finditer(text):
        target = match.group(1)
        if re.match(r'^[a-z][a-z0-9+.-]*:', target, re.I):
            continue  # https:, mailto: ...
        out.append((text.count('\n', 0, match.start()) + 1, target))
    return out


def test_slug_follows_github():
    assert slug('`make demo`') == 'make-demo'
    assert slug("Differences from the authors' released code") == (
        'differences-from-the-authors-released-code')
    assert slug('`tools/test.py` flags') == 'toolstestpy-flags'
    assert slug('`weights_only` errors when loading a checkpoint') == (
        'weights_only-errors-when-loading-a-checkpoint')
    assert slug('Classification (MMPretrain)') == 'classification-mmpretrain'


def test_readme_is_short():
    with open(osp.join(REPO, 'README.md'), encoding='utf-8') as f:
        lines = f.read().splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f'README.md has {len(lines)} lines, at most {README_MAX_LINES}: '
        'move the details into docs/')


def test_docs_exist_and_readme_links_into_them():
    readme_targets = {
        t
        for _, t in relative_links(osp.join(REPO, 'README.md'))
    }
    for page in ('get_started.md', 'method.md', 'results.md', 'faq.md',
                 'changelog.md', 'user_guides/segmentation.md',
                 'user_guides/classification.md',
                 'user_guides/classification_benchmarks.md',
                 'user_guides/detection.md', 'user_guides/label_shift.md',
                 'user_guides/own_dataset.md', 'user_guides/analysis_tools.md',
                 'advanced_guides/supported_heads.md',
                 'advanced_guides/components.md',
                 'advanced_guides/baselines.md',
                 'advanced_guides/distributed_and_resume.md',
                 'advanced_guides/validation.md'):
        assert osp.isfile(osp.join(REPO, 'docs', page)), page
        assert any(t.split('#')[0] == f'docs/{page}'
                   for t in readme_targets), (
                       f'README.md does not link to docs/{page}')


@pytest.mark.parametrize(
    'page', doc_files(), ids=lambda p: osp.relpath(p, REPO))
def test_relative_links_resolve(page):
    broken = []
    for number, target in relative_links(page):
        file_part, _, anchor = target.partition('#')
        dest = page if not file_part else osp.normpath(
            osp.join(osp.dirname(page), file_part))
        where = f'{osp.relpath(page, REPO)}:{number}: {target}'
        if not osp.exists(dest):
            broken.append(f'{where} (no such file)')
        elif anchor and dest.endswith('.md') and anchor not in anchors(dest):
            broken.append(f'{where} (no heading with anchor #{anchor})')
    assert not broken, '\n'.join(broken)


def test_link_checker_catches_broken_links(tmp_path):
    page = tmp_path / 'page.md'
    (tmp_path / 'other.md').write_text('# Other\n\n## A `code` heading\n')
    page.write_text('# Page\n\n[ok](other.md#a-code-heading) [self](#page)\n'
                    '[gone](missing.md) [bad\nanchor](other.md#nope)\n'
                    '```\n[in code](ignored.md)\n```\n'
                    '`[inline](ignored.md)` [web](https://example.org/x)\n')
    targets = [t for _, t in relative_links(str(page))]
    assert targets == [
        'other.md#a-code-heading', '#page', 'missing.md', 'other.md#nope'
    ]
    assert 'a-code-heading' in anchors(str(tmp_path / 'other.md'))
    assert 'nope' not in anchors(str(tmp_path / 'other.md'))


def _source_files() -> List[str]:
    files = [osp.join(REPO, 'README.md')]
    for folder in ('docs', 'mmnpe', 'configs', 'tools', 'tests', 'benchmarks'):
        for root, dirs, names in os.walk(osp.join(REPO, folder)):
            dirs[:] = [d for d in dirs if d != '__pycache__']
            files += [
                osp.join(root, n) for n in names
                if not n.endswith(('.png', '.jpg', '.pyc'))
            ]
    return sorted(files)


def test_docs_cited_by_the_code_exist():
    """``docs/<page>.md`` and ``docs/<page>.md, "Heading"`` in the code name
    a page that exists and a heading it has."""
    missing = []
    for path in _source_files():
        if path.endswith('.md') or path == osp.abspath(__file__):
            continue
        with open(path, encoding='utf-8', errors='replace') as f:
            # Docstrings and comments wrap lines: join them first.
            text = re.sub(r'\s*\n\s*(#\s*)?', ' ', f.read())
        for page, heading in DOC_CITATION.findall(text):
            dest = osp.join(REPO, 'docs', page)
            where = osp.relpath(path, REPO)
            if not osp.isfile(dest):
                missing.append(f'{where}: docs/{page} (no such page)')
            elif heading and heading not in headings(dest):
                missing.append(f'{where}: docs/{page}, "{heading}" '
                               '(no such heading)')
    assert not missing, '\n'.join(missing)


# Built from pieces so that this file does not match itself.
FORBIDDEN = [
    re.compile(re.escape('/wo' + 'rk/')),
    re.compile(re.escape('DESIGN' + '.md')),
    re.compile(re.escape('STYLE' + '.md')),
    re.compile(re.escape('2408' + '.10176')),
    re.compile(r'\biss' + r'ue\s+#?\d', re.IGNORECASE),
]


def test_no_references_outside_the_repository():
    """No development-machine path, internal planning file, wrong paper id
    or issue number in anything a user reads or runs."""
    hits = []
    for path in _source_files():
        with open(path, encoding='utf-8', errors='replace') as f:
            for number, line in enumerate(f, 1):
                for pattern in FORBIDDEN:
                    if pattern.search(line):
                        hits.append(f'{osp.relpath(path, REPO)}:{number}: '
                                    f'{line.strip()[:100]}')
    assert not hits, '\n'.join(hits)


def test_forbidden_patterns_match_what_they_should():
    samples = [
        'see /wo' + 'rk/shared/x', 'DESIGN' + '.md section 2',
        'arXiv 2408' + '.10176', 'as Iss' + 'ue 7 asks', 'iss' + 'ue #12'
    ]
    for sample in samples:
        assert any(p.search(sample) for p in FORBIDDEN), sample
    for fine in ('the issue is', 'tissue 3', 'docs/method.md',
                 'arXiv:2602.17853'):
        assert not any(p.search(fine) for p in FORBIDDEN), fine
