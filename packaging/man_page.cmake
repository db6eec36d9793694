# jobstore(1): help2man over `jobstore --help`, with each subcommand's --help as a section.
#   cmake -DBINARY=... -DOUT=jobstore.1.gz -DWORK=dir -P man_page.cmake
set(include "${WORK}/jobstore.h2m")
file(WRITE "${include}" "[DESCRIPTION]\njobstore keeps jobs as events in a durable log and serves them over a REST API.\nThe subcommands and their options follow; every serve option also reads JOBSTORE_<FLAG>\nand may live in a --config file.\n")
foreach(sub serve inspect replay backup)
  execute_process(COMMAND "${BINARY}" ${sub} --help OUTPUT_VARIABLE help RESULT_VARIABLE failed)
  if(failed)
    message(FATAL_ERROR "${BINARY} ${sub} --help failed")
  endif()
  string(TOUPPER "${sub}" title)
  string(REPLACE "\\" "\\\\" help "${help}")
  file(APPEND "${include}" "[${title}]\n.nf\n${help}\n.fi\n")
endforeach()
execute_process(COMMAND help2man --no-info --no-discard-stderr
                        --name "durable, event-sourced job store" --section 1
                        --include "${include}" --output "${WORK}/jobstore.1" "${BINARY}"
                RESULT_VARIABLE failed)
if(failed)
  message(FATAL_ERROR "help2man failed")
endif()
execute_process(COMMAND gzip -9nf "${WORK}/jobstore.1" RESULT_VARIABLE failed)
if(failed)
  message(FATAL_ERROR "gzip failed")
endif()
