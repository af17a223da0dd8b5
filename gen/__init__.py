"""gen/: elaboration of rtl/ with a quantized model into Verilog (Verilator), RTLIL (yosys),
ROM images and summaries; and the yosys/nextpnr/ecppack synthesis flow."""
