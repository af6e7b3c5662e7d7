return function(o) error('template master_chain is not written yet', 2) end
