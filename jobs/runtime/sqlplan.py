"""What a SQL statement or expression is, from Spark's own parse of it, in any session (classic or Spark
Connect): the parsed logical plan that `EXPLAIN EXTENDED` prints. Nothing is executed, and a statement
whose analysis fails never reaches the optimizer (so no constant is folded, no function evaluated).

Used to keep `lakesift sql` to reading unless --write is given, and to refuse recipe predicates that call
functions outside jobs/gold/recipe.py ALLOWED_FUNCTIONS.

Reads   the session's parse of the text (EXPLAIN EXTENDED); writes nothing; the same text gives the same answer.
"""
from __future__ import annotations

import re

PARSED, ANALYZED = "== Parsed Logical Plan ==", "== Analyzed Logical Plan =="
_NODE = re.compile(r"^[\s:|+\-]*'?([A-Za-z_][\w$]*)")
# Spark renders an unparsed function call as 'name(...) and a subquery expression as kind#id
_CALL = re.compile(r"'((?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*)\(")
_SUBQUERY = re.compile(r"(?<![\w'])(?:scalar-subquery|lateral-subquery|exists|list)#\d+")
# ... but prints a quoted name without its backquotes ('my fn(...)): those calls are read from the text
_QUOTED_CALL = re.compile(r"`((?:[^`]|``)+)`(?:\s|/\*.*?\*/|--[^\n]*\n)*\(", re.S)
# A table no lakehouse holds: an expression is checked as `SELECT expr FROM` it, so its analysis always
# fails and the optimizer (which folds constants: evaluates functions) never runs.
_NOWHERE = "`__lakesift_no_such_table__`"

# Logical plan nodes that only read: query operators, and the commands that show or describe.
READ_ONLY_NODES = frozenset("""
Project Filter Aggregate Join LateralJoin Sort GlobalLimit LocalLimit Offset Tail SubqueryAlias Union Distinct
Deduplicate Except Intersect CTE UnresolvedWith WithCTE CTERelationDef CTERelationRef UnresolvedRelation
RelationTimeTravel UnresolvedInlineTable LocalRelation OneRowRelation Range UnresolvedTableValuedFunction
UnresolvedTVFAliases UnresolvedSubqueryColumnAliases Generate Pivot Unpivot Expand Sample RepartitionByExpression
Repartition RebalancePartitions UnresolvedHint ResolvedHint UnresolvedHaving WithWindowDefinition Window
UnresolvedNamespace UnresolvedTableOrView UnresolvedTable UnresolvedView UnresolvedFunctionName
CurrentNamespace$ ResolvedNamespace
ShowTables ShowTablesExtended ShowNamespaces ShowViews ShowColumns ShowFunctions ShowTableProperties
ShowCreateTable ShowPartitions ShowCatalogsCommand ShowCurrentNamespaceCommand DescribeRelation DescribeColumn
DescribeNamespace DescribeFunction DescribeQueryCommand ExplainCommand
""".split())


def parsed_plan(spark, statement: str) -> str:
    """The parsed logical plan of `statement`, as Spark prints it (raises ParseException on bad syntax)."""
    text = spark.sql(f"EXPLAIN EXTENDED {statement}").first()[0]
    start = text.index(PARSED) + len(PARSED)
    end = text.find(ANALYZED, start)
    return text[start:end if end >= 0 else len(text)].strip("\n")


def plan_nodes(plan: str) -> list[str]:
    """The node names of a printed plan, top down (one node per line)."""
    return [m.group(1) for m in map(_NODE.match, plan.splitlines()) if m]


def writing_nodes(spark, statement: str) -> list[str]:
    """The nodes of the statement's plan that are not known to only read (empty: it only reads)."""
    return [n for n in plan_nodes(parsed_plan(spark, statement)) if n not in READ_ONLY_NODES]


def called_functions(spark, expression: str) -> list[str]:
    """The functions a SQL expression calls, lower case (so quoting or comments cannot hide one); a
    subquery counts as the function `subquery`. The expression stands on lines of its own, so a `--`
    comment in it cannot reach past it."""
    plan = parsed_plan(spark, f"SELECT (\n{expression}\n) FROM {_NOWHERE}")
    quoted = [m.group(1).replace("``", "`").lower() for m in _QUOTED_CALL.finditer(expression)]
    return ([m.group(1).lower() for m in _CALL.finditer(plan)] + [q for q in quoted if not re.fullmatch(r"\w+", q)]
            + ["subquery"] * len(_SUBQUERY.findall(plan)))
