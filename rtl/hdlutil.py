"""Small HDL helpers shared by the rtl/ components."""


def eq_const(value, const: int):
    """``value == const``; for ``const == 0`` written as ``~value.any()``.

    yosys turns ``x == 0`` into Verilog ``!x``, which Verilator's ``-Wall`` reports as WIDTHTRUNC for a
    multi-bit ``x``; a reduction OR keeps the generated Verilog lint-clean with the same meaning.
    """
    return ~value.any() if const == 0 else value == const
