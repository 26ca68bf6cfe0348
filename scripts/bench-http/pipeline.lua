-- wrk script: 16 pipelined GETs of the same path per write.
-- Usage: wrk -s pipeline.lua URL -- PATH
init = function(args)
    local path = args[1] or "/"
    local reqs = {}
    for i = 1, 16 do
        reqs[i] = wrk.format("GET", path)
    end
    batch = table.concat(reqs)
end

request = function()
    return batch
end
