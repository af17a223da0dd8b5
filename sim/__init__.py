"""sim/: cocotb 2.x testbenches and the Verilator runners that check the generated Verilog
against the integer golden model."""
