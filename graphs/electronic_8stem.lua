return function(o) error('template electronic_8stem is not written yet', 2) end
