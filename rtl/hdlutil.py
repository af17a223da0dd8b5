"""Small HDL helpers shared by the rtl/ components."""


def eq_const(value, const: int):
    """``value == const``; for ``const == 0`` written as ``~value.any()``.

    yosys turns ``x == 0`` into Verilog ``!x``, which Verilator's ``-Wall`` reports as WIDTHTRUNC for a
    multi-bit ``x``; a reduction OR keeps the generated Verilog lint-clean with the same meaning.
    """
    return ~value.any() if const == 0 else value == const


def case_or_default(m, key, last: bool):
    """``m.Case(key)``, or ``m.Default()`` for the ``last`` case of a switch whose other values never
    occur: a register then loads in every cycle instead of holding, so no decoded clock enable fans
    out onto its bits."""
    return m.Default() if last else m.Case(key)
