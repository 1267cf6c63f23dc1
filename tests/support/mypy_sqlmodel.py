"""The pydantic mypy plugin, taught what SQLModel tables are at the class level.

On a `table=True` model, `Delivery.state` is a SQLAlchemy column attribute at run time, but mypy
reads the annotation (`state: str`) and reports `Delivery.state.in_(...)` or
`select(Delivery.id)` as errors (several hundred of them). This plugin types a table field read
on the class as `InstrumentedAttribute[<field type>]` (a primary key without its `| None`), and
gives table classes their `__table__`, so the queries are checked instead of silenced. Instances
are untouched: `delivery.state` stays `str`. Used by pyproject.toml's [tool.mypy] (tests/run
runs it).
"""

from __future__ import annotations

from collections.abc import Callable

from mypy.nodes import AssignmentStmt, CallExpr, ClassDef, NameExpr, TypeInfo, Var
from mypy.plugin import AttributeContext, ClassDefContext, Plugin
from mypy.plugins.common import add_attribute_to_class
from mypy.typeops import make_simplified_union
from mypy.types import Instance, NoneType, Type, UnionType, get_proper_type
from pydantic.mypy import PydanticPlugin

SQLMODEL = "sqlmodel.main.SQLModel"
COLUMN = "sqlalchemy.orm.attributes.InstrumentedAttribute"
TABLE = "sqlalchemy.sql.schema.Table"


MARK = "broadcast_sqlmodel_table"  # in TypeInfo.metadata, which mypy's cache keeps


def is_table(info: TypeInfo) -> bool:
    """True for a class declared `class X(SQLModel, table=True)` (or a subclass of one)."""
    return any(MARK in klass.metadata for klass in info.mro)


def declares_table(cls: ClassDef) -> bool:
    table = cls.keywords.get("table")
    return isinstance(table, NameExpr) and table.fullname == "builtins.True"


def primary_keys(cls: ClassDef) -> list[str]:
    """The fields declared `Field(..., primary_key=True)`."""
    keys = []
    for statement in cls.defs.body:
        if not isinstance(statement, AssignmentStmt) or not isinstance(statement.rvalue, CallExpr):
            continue
        call = statement.rvalue
        for name, value in zip(call.arg_names, call.args, strict=True):
            if name == "primary_key" and isinstance(value, NameExpr) and value.name == "True":
                keys += [t.name for t in statement.lvalues if isinstance(t, NameExpr)]
    return keys


def key_fields(info: TypeInfo) -> set[str]:
    return {key for klass in info.mro for key in klass.metadata.get(MARK, {}).get("keys", ())}


class SQLModelPlugin(PydanticPlugin):
    def get_additional_deps(self, file: object) -> list[tuple[int, str, int]]:
        return [(10, "sqlalchemy.orm.attributes", -1), (10, "sqlalchemy.sql.schema", -1)]

    def get_base_class_hook(self, fullname: str) -> Callable[[ClassDefContext], None] | None:
        pydantic_hook = super().get_base_class_hook(fullname)
        if fullname != SQLMODEL:
            return pydantic_hook

        def hook(ctx: ClassDefContext) -> None:
            if pydantic_hook is not None:
                pydantic_hook(ctx)
            if declares_table(ctx.cls):
                ctx.cls.info.metadata[MARK] = {"keys": primary_keys(ctx.cls)}
            if is_table(ctx.cls.info) and "__table__" not in ctx.cls.info.names:
                table = ctx.api.named_type_or_none(TABLE)
                if table is None:
                    ctx.api.defer()
                    return
                add_attribute_to_class(ctx.api, ctx.cls, "__table__", table, is_classvar=True)

        return hook

    def get_class_attribute_hook(self, fullname: str) -> Callable[[AttributeContext], Type] | None:
        class_name, _, field = fullname.rpartition(".")
        if field.startswith("_"):
            return super().get_class_attribute_hook(fullname)
        symbol = self.lookup_fully_qualified(class_name)
        if symbol is None or not isinstance(symbol.node, TypeInfo) or not is_table(symbol.node):
            return super().get_class_attribute_hook(fullname)
        node = symbol.node.get(field)
        if node is None or not isinstance(node.node, Var) or node.node.is_classvar:
            return super().get_class_attribute_hook(fullname)

        # A primary key read from the table is never NULL: `id: int | None` (None until the row
        # is flushed) selects as `int`.
        is_key = field in key_fields(symbol.node)

        def column(ctx: AttributeContext) -> Type:
            attribute = self.lookup_fully_qualified(COLUMN)
            if ctx.is_lvalue or attribute is None or not isinstance(attribute.node, TypeInfo):
                return ctx.default_attr_type
            value = ctx.default_attr_type
            if is_key:
                items = get_proper_type(value)
                if isinstance(items, UnionType):
                    value = make_simplified_union(
                        [t for t in items.items if not isinstance(get_proper_type(t), NoneType)]
                    )
            return Instance(attribute.node, [value])

        return column


def plugin(version: str) -> type[Plugin]:
    return SQLModelPlugin
