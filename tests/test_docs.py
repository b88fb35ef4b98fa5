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


# -- Docs that match what runs ----------------------------------------------

# A machine's own folders: temporary, home and workspace directories, and
# relative paths that climb out of the repository.
MACHINE_PATH = re.compile(r'(?<![\w.~-])/(?:tmp|home|wo' + r'rk)/'
                          r'|(?:\.\./){2,}(?:tmp|home)\b')


def _committed_results() -> List[str]:
    """Pages a reader reads and the benchmark files they quote."""
    files = doc_files()
    files += sorted(glob.glob(osp.join(REPO, 'benchmarks', '*.json')))
    files += sorted(glob.glob(osp.join(REPO, 'benchmarks', '*.md')))
    return sorted(set(files))


def test_no_machine_paths_in_docs_and_benchmark_files():
    hits = []
    for path in _committed_results():
        with open(path, encoding='utf-8') as f:
            for number, line in enumerate(f, 1):
                if MACHINE_PATH.search(line):
                    hits.append(f'{osp.relpath(path, REPO)}:{number}: '
                                f'{line.strip()[:100]}')
    assert not hits, '\n'.join(hits)


def test_machine_path_pattern():
    for bad in ('--md /tm' + 'p/s.md', '"../../../tm' + 'p/lsw/data"',
                'cd /ho' + 'me/user/x', 'at /wo' + 'rk/main'):
        assert MACHINE_PATH.search(bad), bad
    for fine in ('work_dirs/accuracy_study/data', 'docs/results.md',
                 '../../benchmarks/README.md', '~/.cache/mmnpe/wheels',
                 '<out-dir>/data/synthetic_lt'):
        assert not MACHINE_PATH.search(fine), fine


def test_benchmark_json_paths_stay_in_the_repository():
    """Every path-like string of a committed benchmark JSON is relative to
    the repository and stays inside it."""
    import json
    bad = []

    def walk(node, where):
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f'{where}.{k}')
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f'{where}[{i}]')
        elif isinstance(node, str) and ('/' in node and ' ' not in node):
            if osp.isabs(node) or osp.normpath(node).startswith('..'):
                bad.append(f'{where}: {node}')

    for path in glob.glob(osp.join(REPO, 'benchmarks', '*.json')):
        with open(path) as f:
            walk(json.load(f), osp.relpath(path, REPO))
    assert not bad, '\n'.join(bad)


# History the reader never saw: what holds now is stated instead.
HISTORY = re.compile(
    r'earlier snapshots?|an earlier machine|since the previous run|'
    r'formerly|in every run so far', re.IGNORECASE)


@pytest.mark.parametrize('page', [
    'README.md', 'docs/results.md', 'docs/changelog.md', 'docs/get_started.md',
    'benchmarks/README.md'
])
def test_docs_state_what_holds_now(page):
    with open(osp.join(REPO, page), encoding='utf-8') as f:
        hits = [
            f'{page}:{n}: {line.strip()[:100]}' for n, line in enumerate(f, 1)
            if HISTORY.search(line)
        ]
    assert not hits, '\n'.join(hits)


def test_pip_install_commands_work_from_a_clone():
    """No release is on the package index, and zsh expands unquoted
    brackets: extras are installed as ``pip install -e ".[det]"``."""
    hits = []
    pattern = re.compile(r'pip install (?:-U )?mmnpe\b|pip install -e \.\[')
    for path in _source_files() + [osp.join(REPO, 'setup.py')]:
        with open(path, encoding='utf-8', errors='replace') as f:
            for number, line in enumerate(f, 1):
                if pattern.search(line):
                    hits.append(f'{osp.relpath(path, REPO)}:{number}: '
                                f'{line.strip()[:100]}')
    assert not hits, '\n'.join(hits)


def _read(page: str) -> str:
    with open(osp.join(REPO, page), encoding='utf-8') as f:
        return f.read()


def test_cpu_only_record_is_said_up_front():
    """README and get started say that the CI and every measured number ran
    on CPUs and that no CUDA run has been made, before any command."""
    for page in ('README.md', 'docs/get_started.md'):
        text = _read(page)
        first_command = text.index('```')
        head = ' '.join(text[:first_command].split())
        assert 'ran on CPUs' in head, page
        assert 'no CUDA run has been made' in head.replace(
            'No CUDA', 'no CUDA'), page


def test_get_started_names_the_system_prerequisites():
    text = ' '.join(_read('docs/get_started.md').split())
    for needed in ('C++20 compiler', 'python3-venv', 'package index',
                   'mmcv build takes 20-30 minutes on 2 cores'):
        assert needed in text, needed


def _code_blocks(page: str) -> List[str]:
    """The fenced code blocks of a page, with line continuations joined."""
    blocks, current, fenced = [], [], False
    for line in _read(page).splitlines():
        if FENCE.match(line):
            if fenced:
                blocks.append('\n'.join(current).replace('\\\n', ' '))
                current = []
            fenced = not fenced
        elif fenced:
            current.append(line)
    return blocks


def _commands(page: str, tool: str) -> List[List[str]]:
    """Every command line of the page's code blocks that runs ``tool``, as
    argv (comments dropped, shell variables of the block expanded)."""
    import shlex
    out = []
    for block in _code_blocks(page):
        env = {}
        for line in block.splitlines():
            line = line.split(' #')[0].strip()
            assign = re.match(r'^([A-Z_]+)=(\S+)$', line)
            if assign:
                env[assign.group(1)] = assign.group(2)
                continue
            if tool not in line or line.startswith('#'):
                continue
            for name in sorted(env, key=len, reverse=True):
                line = line.replace(f'${name}', env[name])
            out.append(shlex.split(line))
    return out


def _total_batch(argv: List[str]):
    """(total batch of the launch, the TotalBatchSizeHook's total) of a
    ``tools/train.py`` or ``tools/dist_train.sh`` command line."""
    from mmengine.config import Config, DictAction
    start = next(i for i, a in enumerate(argv)
                 if a.endswith(('tools/train.py', 'tools/dist_train.sh')))
    config = argv[start + 1]
    processes = 1
    if argv[start].endswith('dist_train.sh'):
        processes = int(argv[start + 2])
    cfg = Config.fromfile(osp.join(REPO, config))
    if '--cfg-options' in argv:
        i = argv.index('--cfg-options') + 1
        options = {}
        while i < len(argv) and not argv[i].startswith('--'):
            key, value = argv[i].split('=', 1)
            options[key] = DictAction._parse_iterable(value)
            i += 1
        cfg.merge_from_dict(options)
    hooks = [
        h for h in cfg.get('custom_hooks', [])
        if h.get('type') == 'TotalBatchSizeHook'
    ]
    if not hooks:
        return None, None
    accumulate = cfg.optim_wrapper.get('accumulative_counts', 1)
    return (cfg.train_dataloader.batch_size * processes * accumulate,
            hooks[0].total_batch_size)


def test_readme_training_commands_pass_the_total_batch_check():
    """Every training command of the README is one TotalBatchSizeHook
    accepts, with the processes it launches (the detection configs' stock
    batch is 2 per GPU on 8 GPUs)."""
    pytest.importorskip('mmdet')
    commands = [
        c for c in _commands('README.md', 'tools/') if any(
            a.endswith(('tools/train.py', 'tools/dist_train.sh')) for a in c)
    ]
    checked = 0
    for argv in commands:
        total, want = _total_batch(argv)
        if want is None:
            continue
        checked += 1
        assert total == want, (' '.join(argv), total, want)
    lvis = [c for c in commands if any('configs/lvis/' in a for a in c)]
    assert len(lvis) >= 2 and checked >= len(lvis) + 1


def test_total_batch_reader_catches_the_refused_launch():
    pytest.importorskip('mmdet')
    total, want = _total_batch([
        'python', 'tools/train.py',
        'configs/lvis/mask-rcnn_r50_fpn_npe-frozen_sample1e-3-ms-1x_lvis-'
        'v1.py'
    ])
    assert (total, want) == (2, 16)


def test_readme_label_shift_example_calibrates_on_other_images():
    """The README's label-shift command calibrates (--val) and estimates
    (--target) on two splits of its config that are different files."""
    from mmengine.config import Config
    commands = _commands('README.md', 'tools/analysis/label_shift.py')
    assert commands
    for argv in commands:
        config = argv[argv.index('tools/analysis/label_shift.py') + 1]
        val = argv[argv.index('--val') + 1]
        target = argv[argv.index('--target') + 1]
        assert val != target
        cfg = Config.fromfile(osp.join(REPO, config))
        a = cfg[f'{val}_dataloader'].dataset
        b = cfg[f'{target}_dataloader'].dataset
        assert (a.data_root, a.ann_file) != (b.data_root, b.ann_file), argv


def test_readme_says_what_make_demo_runs():
    """The README names the methods the demo does not run, and each of them
    is indeed absent from tools/demo.py's runs."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'demo', osp.join(REPO, 'tools', 'demo.py'))
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    ran = set(demo.CLS_CONFIGS) | set(demo.DET_CONFIGS)
    text = ' '.join(_read('README.md').split())
    assert 'runs every method' not in text
    assert 'compare every method' not in text
    said = re.search(r'`make demo` runs (.*?); the (.*?) are not in it', text)
    assert said, 'README.md must say what make demo runs and what not'
    for method in ('CE', 'post-hoc LA', 'Balanced Softmax', 'NPE-LA',
                   'repeat-factor sampling', 'Balanced Sigmoid'):
        assert method in said.group(1), method
    for method in ('LA loss', 'cRT', 'IWB'):
        assert method in said.group(2), method
        assert method not in ran, method
    assert 'LA post-hoc' in ran and 'Balanced Sigmoid' in demo.DET_CONFIGS
    # segmentation Balanced Sigmoid: the demo's segmentation runs are the
    # four configs it names.
    assert 'segmentation Balanced Sigmoid' in said.group(2)
    assert 'balanced-sigmoid' not in ' '.join(
        osp.basename(c)
        for c in (demo.SEG_BASELINE, demo.SEG_NPE, demo.SEG_LA, demo.SEG_BS))


def _number_cells(text: str) -> List[str]:
    return re.findall(r'\d+\.\d+', text)


def test_readme_paper_numbers_are_the_papers_tables():
    """Every number of the README's table of the paper's numbers is in the
    paper tables of docs/results.md, and the LA-loss count is right."""
    readme = _read('README.md')
    table = readme.split('**Published in the NPE paper**',
                         1)[1].split('## Installation', 1)[0]
    results = _read('docs/results.md').split('## The paper\'s numbers', 1)[1]
    rows_of_table = '\n'.join(line for line in table.splitlines()
                              if line.startswith('|'))
    for number in _number_cells(rows_of_table):
        assert number in results, number
    # Where the LA loss beats both NPE-LA rows, over the 12 CIFAR-LT cells.
    rows = {}
    for schedule in ('HP-1', 'HP-2'):
        block = results.split(f'**CIFAR-LT, {schedule}**',
                              1)[1].split('\n\n**', 1)[0]
        for line in block.splitlines():
            cells = [c.strip() for c in line.strip('|').split('|')]
            if cells and cells[0] in ('LA (loss)', 'NPE-LA, 1 PEM',
                                      'NPE-LA, 16 PEMs'):
                rows[(schedule,
                      cells[0])] = [float(c.split('±')[0]) for c in cells[1:]]
    cells = [('100', '200'), ('100', '100'), ('100', '50'), ('10', '200'),
             ('10', '100'), ('10', '50')]
    wins = [(s, *cells[i]) for s in ('HP-1', 'HP-2') for i in range(6)
            if rows[(s, 'LA (loss)')][i] > max(rows[(
                s, 'NPE-LA, 1 PEM')][i], rows[(s, 'NPE-LA, 16 PEMs')][i])]
    text = ' '.join(table.split())
    assert f'The LA loss beats NPE-LA in {len(wins)} of the 12' in text
    # Each such cell is a row of the table (its LA loss in bold) or named.
    for schedule, classes, rho in wins:
        row = f'| CIFAR-{classes}-LT, rho {rho}, {schedule} ('
        named = f'{schedule} CIFAR-{classes} rho {rho}'
        shown = [line for line in table.splitlines() if line.startswith(row)]
        assert named in text or (shown and '**LA loss' in shown[0]), (schedule,
                                                                      classes,
                                                                      rho)
    assert sum(
        line.startswith('| CIFAR') and '**LA loss' in line
        for line in table.splitlines()) >= 2


# Regions of a page quoting a study file: every number with a decimal
# point, and every "a ± b", is a value of that file at the precision quoted.
QUOTES = re.compile(r'<!-- quotes: (\S+) -->(.*?)<!-- end quotes -->', re.S)
PM = re.compile(r'(\d+(?:\.\d+)?) ± (\d+(?:\.\d+)?)')


def _rounds_to(value: str, quoted: str) -> bool:
    from decimal import ROUND_HALF_UP, Decimal
    places = len(quoted.split('.')[1]) if '.' in quoted else 0
    step = Decimal(1).scaleb(-places)
    return Decimal(value).quantize(step, ROUND_HALF_UP) == Decimal(quoted)


def check_quotes(text: str, source: str) -> List[str]:
    """Numbers of ``text`` that are no value of ``source``'s text."""
    pairs = PM.findall(source)
    values = re.findall(r'\d+\.\d+', source)
    wrong = []
    for a, b in PM.findall(text):
        if not any(_rounds_to(x, a) and _rounds_to(y, b) for x, y in pairs):
            wrong.append(f'{a} ± {b}')
    rest = PM.sub(' ', text)
    rest = re.sub(r'`[^`]*`', ' ', rest)  # code: names, not numbers
    for number in re.findall(r'(?<![\w.])\d+\.\d+(?![\w.])', rest):
        if not any(_rounds_to(v, number) for v in values):
            wrong.append(number)
    return wrong


@pytest.mark.parametrize(
    'page', doc_files(), ids=lambda p: osp.relpath(p, REPO))
def test_numbers_quoted_from_a_study_file_are_in_it(page):
    with open(page, encoding='utf-8') as f:
        text = f.read()
    for source, quoted in QUOTES.findall(text):
        path = osp.join(REPO, source)
        assert osp.isfile(path), f'{osp.relpath(page, REPO)}: {source}'
        with open(path, encoding='utf-8') as f:
            wrong = check_quotes(quoted, f.read())
        assert not wrong, (f'{osp.relpath(page, REPO)} quotes {source}: '
                           f'not in it: {wrong}')


def test_results_page_quotes_the_accuracy_study():
    assert '<!-- quotes: benchmarks/accuracy_study.md -->' in _read(
        'docs/results.md')


def test_quote_checker_catches_a_wrong_number():
    source = '| CE | 25.36 ± 3.19 | 0.99 ± 0.01 | 30.40 ± 36.04 |'
    assert check_quotes('CE 25.4, r = 0.99, 30 ± 36 %, `iter_2.5`',
                        source) == []
    assert check_quotes('CE 25.5 and 30 ± 35', source) == ['30 ± 35', '25.5']


def _registered_by_mmnpe() -> Set[str]:
    """Every name mmnpe registers, in every host's registries."""
    import importlib

    import mmnpe  # noqa: F401
    names = set()
    for module, registries in (
        ('mmengine.registry', ('MODELS', 'HOOKS', 'DATA_SAMPLERS', 'DATASETS',
                               'METRICS')),
        ('mmseg.registry', ('MODELS', 'DATASETS', 'METRICS', 'HOOKS')),
        ('mmpretrain.registry', ('MODELS', 'DATASETS', 'METRICS', 'HOOKS')),
        ('mmdet.registry', ('MODELS', 'DATASETS', 'METRICS', 'HOOKS')),
    ):
        try:
            host = importlib.import_module(module)
        except ImportError:
            continue
        for registry in registries:
            for name, obj in getattr(host, registry).module_dict.items():
                if getattr(obj, '__module__', '').startswith('mmnpe'):
                    names.add(name)
    return names


def test_components_page_lists_every_component_and_function():
    """docs/advanced_guides/components.md names every registered component
    and every public function of mmnpe.functional, and its layout every
    package, config folder and launch script."""
    import mmnpe.functional
    page = _read('docs/advanced_guides/components.md')
    # The names a table row is about: its first cell.
    first_cells = ' '.join(
        line.split('|')[1] for line in page.splitlines()
        if line.startswith('|') and not line.startswith('|---'))
    quoted = set(re.findall(r'`([^`\s(]+)[`(]', first_cells))
    registered = _registered_by_mmnpe()
    assert {
        'NPEShared2FCBBoxHead', 'LongTailListDataset', 'LabelShiftDataset'
    } <= registered
    missing = sorted(registered - quoted)
    assert not missing, f'components.md lacks {missing}'
    missing = sorted(set(mmnpe.functional.__all__) - quoted)
    assert not missing, f'components.md lacks mmnpe.functional.{missing}'
    assert '`target_prior`' in page or '**`target_prior`**' in page
    layout = page.split('## Package layout', 1)[1]
    packages = sorted(
        d for d in os.listdir(osp.join(REPO, 'mmnpe'))
        if osp.isfile(osp.join(REPO, 'mmnpe', d, '__init__.py')))
    folders = sorted(
        d for d in os.listdir(osp.join(REPO, 'configs'))
        if osp.isdir(osp.join(REPO, 'configs', d)))
    scripts = sorted(
        f for f in os.listdir(osp.join(REPO, 'tools')) if f.endswith('.sh'))
    for name in [f'mmnpe/{p}'
                 for p in packages] + [f'{f}/' for f in folders] + scripts:
        assert name in layout, f'the package layout lacks {name}'


# A term, and words of its gloss that must stand in the paragraph where the
# page first uses it.
GLOSSES = {
    'README.md': {
        'HP-1': 'schedules',
        'rho': 'most over least frequent',
        'alpha': 'correction strength',
        'eta': 'estimate of the centred log-prior',
        'tau': 'adjustment strength',
        'cRT': 'classifier re-training',
        'IWB': 'inverse weight balancing',
        'EM': 'expectation-maximisation',
        'BCTS': 'bias-corrected temperature scaling',
        'BBSE': 'black-box shift estimation',
    },
    'docs/results.md': {
        'HP-1': 'training schedules',
        'alpha': 'correction strength',
        'tau': 'logit adjustment',
        'eta': 'estimate of the centred log-prior',
    },
    'docs/get_started.md': {
        'tau': "adjustment's strength",
        'alpha': 'correction strength',
    },
}


@pytest.mark.parametrize('page', sorted(GLOSSES))
def test_terms_are_glossed_where_they_first_appear(page):
    text = _read(page)
    paragraphs = re.split(r'\n\s*\n', text)
    for term, gloss in GLOSSES[page].items():
        pattern = re.compile(r'(?<![\w-])' + re.escape(term) + r'(?![\w-])')
        first = next(p for p in paragraphs if pattern.search(p))
        assert gloss in ' '.join(first.split()), (page, term, first[:200])


def test_benchmarks_page_lists_every_line_and_names_each_machine():
    """benchmarks/README.md's list has every line bench_npe.py runs, and
    every table of results sits under a heading naming its machine."""
    import runpy
    bench = runpy.run_path(
        osp.join(REPO, 'benchmarks', 'bench_npe.py'), run_name='bench')
    page = _read('benchmarks/README.md')
    listed = page.split('## Results by machine', 1)[0]
    missing = [
        n for n in bench['BENCHES'] if f'`{n}`' not in listed
        and not (n.startswith('mem_') and '`mem_*`' in listed)
    ]
    assert not missing, f'benchmarks/README.md does not list {missing}'
    heading = None
    for _, line in prose_lines(page):
        match = HEADING.match(line)
        if match:
            heading = match.group(2)
        elif line.startswith('| measure |') or line.startswith('| C, K |') \
                or line.startswith('| C | K |'):
            # a results table: under the heading of one named machine
            assert heading and heading.startswith('Machine: '), (heading, line)
