"""Customer index and payer-name resolution: credit code, exact full name, exact core name, alias,
learned alias, then fuzzy.

The order matters: the exact full registered name (or full alias) decides before any
normalization, so that `某某科技有限公司苏州分公司` is its own customer and not a tie with its
head office `某某科技有限公司`. Core names match only between the same branch (a head office
is the branch ""); a branch of a customer, or the head office of a customer that is a branch,
is only suggested. A person's name is never resolved to a company by the name alone: finance's
earlier confirmation of a person paying for a company gives at most a suggestion.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from rapidfuzz import fuzz, process

from recon_pipeline.matching.inputs import STRONG_METHODS, MatchOptions
from recon_pipeline.matching.learning import Learned
from recon_pipeline.matching.memo import credit_codes_in_text
from recon_pipeline.matching.names import (
    DEFAULT_CHANNEL_PREFIXES,
    NameParts,
    looks_like_person,
    masked_regex,
    parse_company_name,
    regions_compatible,
)


@dataclass(frozen=True, slots=True)
class NameMatch:
    """What a payer name says about the customer. `customer_id` None: no link."""

    customer_id: str | None
    method: str  # exact_name / alias / fuzzy / none
    score: int
    reason: str = ""  # why no link: tie, below_threshold, ambiguous_exact, ...
    candidates: tuple[tuple[str, int], ...] = ()  # (customer_id, score), best first
    learned: dict | None = None
    relation: str = ""  # branch_of_customer / head_office_of_customer / learned_person

    @property
    def strong(self) -> bool:
        return self.customer_id is not None and self.method in STRONG_METHODS


_NO_MATCH = NameMatch(None, "none", 0, "no_payer_name")
# Placeholder for a name only fuzzy scoring could link, on a line where that cannot matter.
NOT_RESOLVED = NameMatch(None, "none", 0, "not_resolved")
_UNRESOLVED = object()
_RESCORE = 10  # candidates re-scored name-aware after the plain C ratio


_ALIAS_SEPARATORS = str.maketrans({"；": ";", "|": ";", "、": ";", "\n": ";"})


def split_aliases(cell) -> list[str]:
    """A customer's aliases cell: `;`, `；`, `|`, `、` or new lines between them (never commas:
    `XX TRADING (HK) CO., LIMITED` is one name)."""
    if not isinstance(cell, str):
        return []
    return sorted({a.strip() for a in cell.translate(_ALIAS_SEPARATORS).split(";") if a.strip()})


def bigrams(text: str) -> list[str]:
    grams = []
    for segment in text.split("*"):
        grams.extend(segment[i:i + 2] for i in range(len(segment) - 1))
    return grams


@dataclass
class CustomerIndex:
    ids: list[str]
    names: list[str]
    parts: list[NameParts]
    by_core: dict[str, list[int]]
    by_alias: dict[str, list[int]]
    by_credit_code: dict[str, int]
    by_full_name: dict[str, list[int]]  # full key of a registered name -> customers
    by_full_alias: dict[str, list[int]]  # full key of an alias -> customers
    alias_parts: dict[tuple[str, int], NameParts]  # (alias core, customer) -> the alias taken apart
    postings: dict[str, list[int]]
    position: dict[str, int]
    _arrays: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # postings as arrays, on demand

    @classmethod
    def build(cls, customers: pd.DataFrame, channel_prefixes: tuple[str, ...] = DEFAULT_CHANNEL_PREFIXES) -> "CustomerIndex":
        customers = customers.drop_duplicates("customer_id", keep="last")
        ids = [str(c) for c in customers["customer_id"]]
        names = [n if isinstance(n, str) else "" for n in customers["customer_name"]]
        parts = [parse_company_name(n, channel_prefixes) for n in names]
        by_core: dict[str, list[int]] = defaultdict(list)
        by_full_name: dict[str, list[int]] = defaultdict(list)
        postings: dict[str, list[int]] = defaultdict(list)
        for i, p in enumerate(parts):
            if p.is_empty:
                continue
            by_core[p.core].append(i)
            by_full_name[p.full_key].append(i)
            for gram in set(bigrams(p.core)):
                postings[gram].append(i)
        by_alias: dict[str, list[int]] = defaultdict(list)
        by_full_alias: dict[str, list[int]] = defaultdict(list)
        alias_parts: dict[tuple[str, int], NameParts] = {}
        aliases = customers["aliases"] if "aliases" in customers else [None] * len(ids)
        for i, cell in enumerate(aliases):
            for alias in split_aliases(cell):
                alias_name = parse_company_name(alias, channel_prefixes)
                core = alias_name.core
                if core and i not in by_alias[core]:
                    by_alias[core].append(i)
                    alias_parts[(core, i)] = alias_name
                if alias_name.full_key and i not in by_full_alias[alias_name.full_key]:
                    by_full_alias[alias_name.full_key].append(i)
        by_credit: dict[str, int] = {}
        codes = customers["credit_code"] if "credit_code" in customers else [None] * len(ids)
        for i, code in enumerate(codes):
            if isinstance(code, str) and code.strip():
                by_credit[code.strip().upper()] = i
        return cls(ids, names, parts, dict(by_core), dict(by_alias), by_credit, dict(by_full_name),
                   dict(by_full_alias), alias_parts, dict(postings), {cid: i for i, cid in enumerate(ids)})

    def candidates(self, payer: NameParts, options: MatchOptions) -> list[int]:
        """Customers sharing the payer's rarer core bigrams (blocking instead of all pairs).

        Most shared bigrams first; ties broken by customer position, not by set order (which
        changes with the process' string hash seed): the same inputs give the same candidates
        on every run.
        """
        grams = set(bigrams(payer.core)) or ({payer.core} if payer.core else set())
        postings = self.postings
        rare = [g for g in grams if 0 < len(postings.get(g, ())) <= options.blocking_max_postings]
        if rare:
            hits = np.concatenate([self._posting_array(g) for g in rare])
        else:  # only common bigrams: fall back to the least common one
            known = [g for g in grams if g in postings]
            if not known:
                return []
            least = min(known, key=lambda g: (len(postings[g]), g))
            hits = self._posting_array(least)[: options.blocking_max_postings]
        customers, counts = np.unique(hits, return_counts=True)  # customers ascending
        best = np.argsort(-counts, kind="stable")[: options.max_candidates]
        return customers[best].tolist()

    def _posting_array(self, gram: str) -> np.ndarray:
        array = self._arrays.get(gram)
        if array is None:
            array = self._arrays[gram] = np.asarray(self.postings[gram], dtype=np.int64)
        return array


def name_score(payer: NameParts, customer: NameParts, options: MatchOptions) -> int:
    """0-100 similarity of two company names on their core, aware of brand/industry/region."""
    if not payer.core or not customer.core:
        return 0
    if payer.masked:
        pattern = payer.mask_pattern()
        return 90 if pattern.match(customer.core) or _masked_full_match(payer, customer) else 0
    score = fuzz.ratio(payer.core, customer.core)
    if payer.brand and payer.brand == customer.brand and payer.industry != customer.industry:
        if not payer.industry or not customer.industry:
            score = max(score, 90)  # short name without the industry word: 某某 for 某某科技
        elif payer.industry in customer.industry or customer.industry in payer.industry:
            score = max(score, 86)  # 某某科技 vs 某某信息科技: maybe, never certain
    if not regions_compatible(payer.regions, customer.regions):
        score -= options.region_conflict_penalty
    return max(int(round(score)), 0)


def _masked_full_match(payer: NameParts, customer: NameParts) -> bool:
    return masked_regex(payer.normalized).match(customer.normalized) is not None


class NameResolver:
    """Resolves distinct payer names once (payers repeat a lot across bank lines).

    Resolution has two stages: the strong one (credit code, exact core name, alias, learned
    alias), then fuzzy scoring. `strong_only` stops after the first stage, for lines whose
    outcome a fuzzy suggestion cannot change (bank debits nobody decided on).
    """

    def __init__(self, index: CustomerIndex, learned: Learned, options: MatchOptions):
        self.index, self.learned, self.options = index, learned, options
        # key -> final match; None: the strong stage found nothing, fuzzy not computed yet.
        self._cache: dict[tuple[str, frozenset, bool], NameMatch | None] = {}

    def resolve(self, payer: NameParts, excluded: frozenset[str] = frozenset(), use_learned: bool = True,
                strong_only: bool = False, remember: bool = True) -> NameMatch:
        """`remember` False: the name will not come again, do not keep its result."""
        key = (payer.raw, excluded, use_learned)
        found = self._cache.get(key, _UNRESOLVED)
        if found is _UNRESOLVED:
            found = self._resolve_strong(payer, excluded, use_learned)
            if remember:
                self._cache[key] = found
        if found is not None:
            return found
        if strong_only:
            return NOT_RESOLVED
        found = self._fuzzy(payer, excluded)
        if remember:
            self._cache[key] = found
        return found

    def _resolve_strong(self, payer: NameParts, excluded: frozenset[str], use_learned: bool) -> NameMatch | None:
        """The match without fuzzy scoring, or None when only fuzzy scoring can tell."""
        index = self.index
        if payer.is_empty:
            return _NO_MATCH
        if payer.masked:
            return None
        allowed = lambda i: index.ids[i] not in excluded  # noqa: E731
        for code in credit_codes_in_text(payer.raw):
            i = index.by_credit_code.get(code)
            if i is not None and allowed(i):
                return NameMatch(index.ids[i], "exact_name", 100, "credit_code", ((index.ids[i], 100),))
        # The full registered name (then a full alias) as written, before any normalization.
        for table, method, reason in ((index.by_full_name, "exact_name", "registered_name"),
                                      (index.by_full_alias, "alias", "registered_alias")):
            full = [i for i in table.get(payer.full_key, ()) if allowed(i)]
            if len(full) == 1:
                return NameMatch(index.ids[full[0]], method, 100, reason, ((index.ids[full[0]], 100),))
            if len(full) > 1:
                return NameMatch(None, "none", 0, "ambiguous_exact_name", tuple((index.ids[i], 100) for i in full[:5]))
        same_core = [i for i in index.by_core.get(payer.core, []) if allowed(i)
                     and regions_compatible(payer.regions, index.parts[i].regions)]
        compatible = [i for i in same_core if index.parts[i].branch == payer.branch]
        if len(compatible) > 1 and payer.regions:  # the payer's own region picks one
            exact_region = [i for i in compatible if set(index.parts[i].regions) == set(payer.regions)]
            compatible = exact_region if len(exact_region) == 1 else compatible
        if len(compatible) == 1:
            return NameMatch(index.ids[compatible[0]], "exact_name", 100, "", ((index.ids[compatible[0]], 100),))
        if len(compatible) > 1:
            # Several customers share the core name; one registered alias settles it.
            aliased = [i for i in compatible if i in index.by_alias.get(payer.core, [])]
            if len(aliased) == 1:
                return NameMatch(index.ids[aliased[0]], "alias", 100, "", ((index.ids[aliased[0]], 100),))
            return NameMatch(None, "none", 0, "ambiguous_exact_name",
                             tuple((index.ids[i], 100) for i in compatible[:5]))
        aliased = [i for i in index.by_alias.get(payer.core, []) if allowed(i) and self._alias_fits(payer, i)]
        if len(aliased) == 1:
            return NameMatch(index.ids[aliased[0]], "alias", 100, "", ((index.ids[aliased[0]], 100),))
        if same_core:  # the same company name, another branch: a branch pays, or its head office
            return self._other_branch(payer, same_core)
        if use_learned and looks_like_person(payer):
            customer_id, provenance = self.learned.person_customer(payer.normalized)
            if customer_id and customer_id not in excluded and customer_id in index.position:
                return NameMatch(customer_id, "fuzzy", self.options.relation_score, "learned_person",
                                 ((customer_id, self.options.relation_score),), provenance, "learned_person")
            return None
        customer_id, provenance = self.learned.name_customer(payer.normalized) if use_learned else (None, None)
        if customer_id and customer_id not in excluded and customer_id in index.position:
            return NameMatch(customer_id, "alias", 100, "learned_alias", ((customer_id, 100),), provenance)
        return None

    def _alias_fits(self, payer: NameParts, i: int) -> bool:
        """A registered alias with the payer's core: same branch, and regions compatible with the
        alias as written (an English alias `(HK)` of a 深圳 customer), else with the customer."""
        alias = self.index.alias_parts.get((payer.core, i))
        reference = alias if alias is not None and alias.regions else self.index.parts[i]
        branch = alias.branch if alias is not None else self.index.parts[i].branch
        return branch == payer.branch and regions_compatible(payer.regions, reference.regions)

    def _other_branch(self, payer: NameParts, same_core: list[int]) -> NameMatch:
        """The payer's company is a customer under another branch: a suggestion at most. A branch
        payer's head office first; a head office payer with one branch customer."""
        index, score = self.index, self.options.relation_score
        heads = [i for i in same_core if not index.parts[i].branch]
        pool = heads if payer.branch and heads else same_core
        candidates = tuple((index.ids[i], score) for i in pool[:5])
        if len(pool) != 1:
            return NameMatch(None, "none", score, "ambiguous_branch", candidates)
        if not payer.branch:
            relation = "head_office_of_customer"
        else:
            relation = "other_branch_of_customer" if index.parts[pool[0]].branch else "branch_of_customer"
        return NameMatch(index.ids[pool[0]], "fuzzy", score, relation, candidates, relation=relation)

    def _fuzzy(self, payer: NameParts, excluded: frozenset[str]) -> NameMatch:
        index, options = self.index, self.options
        pool = [i for i in index.candidates(payer, options) if index.ids[i] not in excluded]
        if not payer.masked and len(pool) > _RESCORE:
            # Plain ratio in C for the whole pool; the name-aware score for the best and for
            # those sharing the brand (which the plain ratio underrates).
            ratios = process.cdist([payer.core], [index.parts[i].core for i in pool], scorer=fuzz.ratio)[0].tolist()
            order = sorted(range(len(pool)), key=lambda k: (-ratios[k], pool[k]))
            keep = set(order[:_RESCORE]) | {k for k in range(len(pool)) if index.parts[pool[k]].brand == payer.brand}
            pool = [pool[k] for k in sorted(keep)]
        scored = []
        for i in pool:
            score = name_score(payer, index.parts[i], options)
            if score > 0:
                scored.append((score, index.ids[i]))
        scored.sort(key=lambda s: (-s[0], s[1]))
        candidates = tuple((cid, score) for score, cid in scored[:5])
        if not scored:
            return NameMatch(None, "none", 0, "no_candidate")
        best_score, best_id = scored[0]
        if len(scored) > 1 and best_score - scored[1][0] < options.abstain_margin:
            return NameMatch(None, "none", best_score, "tie", candidates)
        if best_score < options.suggest_threshold:
            return NameMatch(None, "none", best_score, "below_threshold", candidates)
        return NameMatch(best_id, "fuzzy", best_score, "", candidates)
